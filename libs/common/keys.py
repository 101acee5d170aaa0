"""The keys and secrets of a production deployment: ``khaibao keys init`` and ``rotate``.

The credentials pair (X25519) seals initial passwords (provisioning) and the personal
details of red declarations and gate cases on the bus (declaration); notification alone
holds its private half and opens both.

``init DIR`` writes every file docker-compose.yml mounts as a secret (FILES below), each
with mode 0600, and refuses to touch a directory that already holds any of them. The
operator then gives each file to the uid of the container that reads it (deploy/README.md).

``rotate token|pass|credentials DIR`` makes a new pair in place of the current one and
keeps the current public key as ``<kind>_public.previous.pem`` (for credentials also the
private key as ``credentials_private.previous.pem``): tokens and passes signed with the old
key keep verifying, boxes sealed to the old key keep opening, as long as the services are
given the previous files (KHAIBAO_AUTH_PREVIOUS_PUBLIC_KEY_FILES,
KHAIBAO_DECLARATION_PASS_PREVIOUS_PUBLIC_KEY_FILES,
KHAIBAO_NOTIFICATION_CREDENTIALS_PREVIOUS_PRIVATE_KEY_FILES). Only one generation is kept:
rotating again replaces the previous files, so the oldest key stops being accepted.
"""
from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

KINDS = ("token", "pass", "credentials")
SECRET_FILES = ("secret_key", "db_password", "grafana_admin_password", "field_keys", "index_key")
FILES = tuple(f"{kind}_{half}.pem" for kind in KINDS for half in ("private", "public")) + SECRET_FILES
MODE = 0o600
# ``init --compose-owners``: (uid, gid, mode) of each file for the container that reads it in
# docker-compose.yml: the services run as 10001 (deploy/Dockerfile), PostgreSQL as 999 (the
# postgres image; it reads db_password too, hence the group), Grafana as 472.
SERVICE_UID = 10001
COMPOSE_OWNERS = {
    **{name: (SERVICE_UID, SERVICE_UID, MODE) for name in FILES},
    "db_password": (999, SERVICE_UID, 0o440),
    "grafana_admin_password": (472, 472, MODE),
}


class KeysError(Exception):
    """A refusal with a message for the operator (exit code 1)."""


def _pem_pair(kind: str) -> tuple[bytes, bytes]:
    key = X25519PrivateKey.generate() if kind == "credentials" else Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


def _secret(name: str) -> bytes:
    # Hex: safe in any URL, header or configuration file without escaping.
    # field_keys and index_key: one 32-byte key (libs/common/fieldcrypt.py).
    length = {"secret_key": 32, "db_password": 24, "grafana_admin_password": 16, "field_keys": 32,
              "index_key": 32}[name]
    return (secrets.token_hex(length) + "\n").encode()


def _write_new(path: Path, data: bytes) -> None:
    """Create ``path`` (never replacing a file) with mode 0600, whatever the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, MODE)
    try:
        os.fchmod(fd, MODE)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def local_secret_key(data_dir: Path) -> Path:
    """``<data_dir>/secret_key``: a random secret of this data folder (``khaibao up``), made
    on first use with mode 0600 and reused after, so that no local run signs cookies or
    result-page tokens with the development default published in the source."""
    path = Path(data_dir) / "secret_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        _write_new(path, _secret("secret_key"))
    except FileExistsError:  # made by an earlier start (or a concurrent one): reused
        pass
    return path


def _replace(path: Path, data: bytes, owner: Path | None = None) -> None:
    """Write ``path`` atomically (a temporary file renamed over it), mode 0600, with the
    owner of ``owner`` (or of ``path``) when allowed to: the operator chowned it for a container."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    _write_new(tmp, data)
    try:
        reference = (owner or path).stat()
        os.chown(tmp, reference.st_uid, reference.st_gid)
    except (FileNotFoundError, PermissionError):
        pass
    os.replace(tmp, path)


def init(directory: Path, echo: Callable[[str], None] = print, compose_owners: bool = False) -> list[str]:
    """Write every file of FILES into ``directory`` (created if missing); nothing if one exists.
    With ``compose_owners`` (as root), each file is given to the uid of its container."""
    directory = Path(directory)
    if compose_owners and os.geteuid() != 0:
        raise KeysError("--compose-owners changes the files' owners: run it as root (sudo, or the image "
                        "with --user 0). Nothing was written.")
    existing = [name for name in FILES if (directory / name).exists()]
    if existing:
        raise KeysError(f"Đã có tệp, không ghi đè / refusing to overwrite existing files in {directory}: "
                        f"{', '.join(existing)}. Nothing was written.")
    contents: dict[str, bytes] = {}
    for kind in KINDS:
        contents[f"{kind}_private.pem"], contents[f"{kind}_public.pem"] = _pem_pair(kind)
    for name in SECRET_FILES:
        contents[name] = _secret(name)
    directory.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    try:
        for name in FILES:
            _write_new(directory / name, contents[name])
            written.append(name)
    except FileExistsError:
        # Another process created one in between: leave the directory as it was.
        for name in written:
            (directory / name).unlink(missing_ok=True)
        raise KeysError(f"a file appeared in {directory} while writing; nothing was written") from None
    if compose_owners:
        for name in written:
            uid, gid, mode = COMPOSE_OWNERS[name]
            os.chown(directory / name, uid, gid)
            os.chmod(directory / name, mode)
    for name in written:
        echo(f"wrote {name}")
    return written


def rotate_field(directory: Path, echo: Callable[[str], None] = print) -> list[str]:
    """A new current key first in ``field_keys``; the earlier ones stay below it to open the
    rows they sealed (drop a line once the retention period has passed since its rotation,
    or after ``khaibao keys reseal``)."""
    path = Path(directory) / "field_keys"
    if not path.is_file():
        raise KeysError(f"no field_keys in {directory}; run `khaibao keys init` first")
    from .fieldcrypt import parse_field_keys
    try:
        parse_field_keys(path.read_text())
    except ValueError as exc:
        raise KeysError(f"{path.name}: {exc}; nothing was written") from None
    _replace(path, _secret("field_keys") + path.read_bytes())
    echo(f"wrote {path.name}")
    return [path.name]


def rotate(kind: str, directory: Path, echo: Callable[[str], None] = print) -> list[str]:
    """A new ``<kind>`` pair; the current public (and for credentials private) key becomes
    the ``.previous.pem`` file, replacing an older previous one. ``field``: a new field key."""
    if kind == "field":
        return rotate_field(directory, echo)
    if kind not in KINDS:
        raise KeysError(f"unknown key kind {kind!r}; one of: {', '.join((*KINDS, 'field'))}")
    directory = Path(directory)
    private, public = directory / f"{kind}_private.pem", directory / f"{kind}_public.pem"
    missing = [p.name for p in (private, public) if not p.is_file()]
    if missing:
        raise KeysError(f"no current {kind} key pair in {directory} (missing {', '.join(missing)}); "
                        f"run `khaibao keys init` first")
    new_private, new_public = _pem_pair(kind)
    written = [f"{kind}_public.previous.pem"]
    _replace(directory / f"{kind}_public.previous.pem", public.read_bytes(), owner=public)
    if kind == "credentials":
        _replace(directory / "credentials_private.previous.pem", private.read_bytes(), owner=private)
        written.append("credentials_private.previous.pem")
    _replace(private, new_private)
    _replace(public, new_public)
    written += [private.name, public.name]
    for name in written:
        echo(f"wrote {name}")
    return written
