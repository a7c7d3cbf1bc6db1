"""Container registry credentials: create input and the (password-free) answer."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from runplane.schemas.common import InputModel, Name


class RegistryAuthCreate(InputModel):
    """POST /v1/containerregistryauth. The password is a SecretStr so no repr or log shows it."""

    name: Name
    username: Annotated[str, Field(min_length=1, max_length=1024)]
    password: Annotated[SecretStr, Field(min_length=1, max_length=16_384)]


class RegistryAuthUpdate(InputModel):
    """New credentials under the same name (GraphQL's ``updateRegistryAuth``; REST has no
    update)."""

    username: Annotated[str, Field(min_length=1, max_length=1024)]
    password: Annotated[SecretStr, Field(min_length=1, max_length=16_384)]


class RegistryAuth(BaseModel):
    """What is answered: id and name only, never the credentials."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    userId: str

    def wire(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name}
