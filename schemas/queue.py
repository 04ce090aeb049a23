"""What the queue panel sends: which dead letters to put back on the stream."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

MAX_REPLAY_IDS = 1000
StreamId = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,20}-[0-9]{1,20}$")]


class ReplayRequest(BaseModel):
    """`{"ids": [...]}` replays those dead letters; no ids (or `{}`) replays them all."""

    model_config = ConfigDict(extra="forbid")

    ids: list[StreamId] = Field(default_factory=list, max_length=MAX_REPLAY_IDS)
