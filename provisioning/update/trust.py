"""The terminal's TUF trust anchor: checking a root.json before a technician places it (`init --tuf-root`)."""
from __future__ import annotations

from tuf.api.exceptions import UnsignedMetadataError
from tuf.api.metadata import Metadata, Root
from tuf.api.serialization import DeserializationError

from provisioning.errors import ProvisionError

TUF_ROOT_NAME = "tuf-root.json"


class TufRootInvalid(ProvisionError):
    """The file given as the TUF root is not a root signed by its own keys."""

    code = "tuf_root_invalid"
    exit_status = 65


def validate_tuf_root(data: bytes, source: str = "the TUF root") -> Root:
    """Parse ``data`` as root metadata signed by a threshold of its own root keys. Raises TufRootInvalid."""
    try:
        md = Metadata.from_bytes(data)
    except DeserializationError as exc:
        raise TufRootInvalid(f"{source} is not TUF metadata: {exc}") from None
    if not isinstance(md.signed, Root):
        raise TufRootInvalid(f"{source} is {md.signed.type} metadata, not a root")
    try:
        md.signed.verify_delegate(Root.type, md.signed_bytes, md.signatures)
    except UnsignedMetadataError as exc:
        raise TufRootInvalid(f"{source} is not signed by its own root keys: {exc}") from None
    return md.signed
