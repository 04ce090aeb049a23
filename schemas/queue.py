"""What the queue panel sends: which dead letters to put back on the stream."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

MAX_REPLAY_IDS = 1000
# Each part of a stream ID is an unsigned 64-bit number: Redis refuses a larger one.
MAX_ID_PART = 2**64 - 1


def _in_range(ref: str) -> str:
    if any(int(part) > MAX_ID_PART for part in ref.rpartition(":")[2].split("-")):
        raise ValueError("not a stream ID: a part is over 2**64 - 1")
    return ref


# A dead letter's stream ID, alone (looked for in every shard) or after its shard's name
# as the queue panel lists it (`3:1732345678901-0`, `legacy:...`).
DeadLetterRef = Annotated[
    str,
    StringConstraints(pattern=r"^((legacy|[0-9]{1,4}):)?[0-9]{1,20}-[0-9]{1,20}$"),
    AfterValidator(_in_range),
]


class ReplayRequest(BaseModel):
    """`{"ids": [...]}` replays those dead letters; no ids (or `{}`) replays them all."""

    model_config = ConfigDict(extra="forbid")

    ids: list[DeadLetterRef] = Field(default_factory=list, max_length=MAX_REPLAY_IDS)
