"""Service-account tokens: the master's signing key, the JWT claims
Kubernetes puts in a bound token, signing and verification (PyJWT over
`cryptography`).

The key is a PEM private key (RSA signs RS256, an ECDSA P-256/384/521 key
ES256/384/512), read from `--service-account-key-file` or created there
(RSA 2048, mode 0600) at the master's first start; its public half is kept
beside it as `<key>.pub` for whoever verifies.  Without a key file (tests,
in-memory stores) a key is made in memory on first use.  The `kid` header
is upstream's: base64url(SHA-256(DER SubjectPublicKeyInfo)), unpadded.

Neighbours: `resources.serviceaccounts.create_token` (the TokenRequest
subresource) builds the claims with `claims` and signs them here; the
authenticator will call `TokenIssuer.verify`.
"""
from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from apimachinery import netplan

DEFAULT_ISSUER = f"https://{netplan.api_server_host()}"
MIN_EXPIRATION_SECONDS = 10 * 60        # upstream's ValidateTokenRequest bounds
MAX_EXPIRATION_SECONDS = 1 << 32
DEFAULT_EXPIRATION_SECONDS = 60 * 60    # authentication.k8s.io/v1 defaulting
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


class TokenError(Exception):
    """A token that does not verify: bad signature, wrong issuer or audience, expired, malformed."""


@dataclass(frozen=True, slots=True)
class BoundObject:
    """An object a token is bound to, as it appears in the `kubernetes.io` claim."""
    name: str
    uid: str = ""

    def claim(self) -> dict[str, str]:
        return {"name": self.name, **({"uid": self.uid} if self.uid else {})}


def service_account_username(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


def claims(issuer: str, namespace: str, sa: BoundObject, audiences: list[str], now: int, expiration_seconds: int,
           *, pod: BoundObject | None = None, secret: BoundObject | None = None, node: BoundObject | None = None,
           jti: str | None = None) -> dict[str, Any]:
    """The claims of a bound service-account token (pure).  A pod-bound token may also name the pod's
    node; a secret binding excludes both (upstream refuses the mix)."""
    if secret is not None and (pod is not None or node is not None):
        raise ValueError("a token can only be bound to one object type")
    k8s: dict[str, Any] = {"namespace": namespace, "serviceaccount": sa.claim()}
    for key, ref in (("pod", pod), ("secret", secret), ("node", node)):
        if ref is not None:
            k8s[key] = ref.claim()
    return {"iss": issuer, "sub": service_account_username(namespace, sa.name), "aud": list(audiences),
            "exp": now + expiration_seconds, "iat": now, "nbf": now, "jti": jti or str(uuid.uuid4()),
            "kubernetes.io": k8s}


def key_id(public: PublicKey) -> str:
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


def algorithm(key: PrivateKey | PublicKey) -> str:
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return "RS256"
    bits = key.curve.key_size
    return {256: "ES256", 384: "ES384", 521: "ES512"}.get(bits) or _unsupported(f"ECDSA curve of {bits} bits")


def _unsupported(what: str) -> str:
    raise ValueError(f"service-account signing key: unsupported {what}; use RSA or ECDSA P-256/P-384/P-521")


def public_key_path(key_file: str) -> str:
    return os.path.splitext(key_file)[0] + ".pub"


def load_or_create_key(path: str) -> PrivateKey:
    """The private key at `path`, created (RSA 2048, 0600) when missing.  Safe against a concurrent
    first start: the file is written under a temp name and linked into place, so a loser reads the winner's."""
    try:
        with open(path, "rb") as f:
            return _private_key(f.read(), path)
    except FileNotFoundError:
        pass
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:  # another master made it first: use theirs
            with open(path, "rb") as f:
                return _private_key(f.read(), path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
    return key


def _private_key(pem: bytes, path: str) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{path}: not an unencrypted PEM private key: {e}") from None
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        _unsupported(f"key type {type(key).__name__}")
    assert isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey))
    algorithm(key)  # rejects unsupported curves at load time
    return key


class TokenIssuer:
    """Signs and verifies this cluster's service-account tokens.  `audiences`: the API server's own
    (upstream's --api-audiences), given to a TokenRequest that names none; the issuer by default."""

    def __init__(self, key_file: str | None = None, issuer: str = DEFAULT_ISSUER,
                 audiences: list[str] | None = None, clock: Callable[[], float] = time.time):
        self.key_file = key_file
        self.issuer = issuer
        self.audiences = list(audiences or [issuer])
        self.clock = clock
        self._key: PrivateKey | None = None
        self._load_lock = threading.Lock()  # token requests run on a thread pool on etcd

    def load(self) -> None:
        """Read or create the key now (the master calls this at start) and write its public half.
        Safe to call concurrently: one key is made."""
        with self._load_lock:
            self._load()

    def _load(self) -> None:
        if self._key is not None:
            return
        if self.key_file is None:
            self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            return
        self._key = load_or_create_key(self.key_file)
        pub = public_key_path(self.key_file)
        pem = self.public_pem()
        with contextlib.suppress(FileNotFoundError):
            with open(pub, "rb") as f:
                if f.read() == pem:
                    return
        tmp = f"{pub}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(pem)
        os.chmod(tmp, 0o644)
        os.replace(tmp, pub)

    @property
    def key(self) -> PrivateKey:
        if self._key is None:
            self.load()
        assert self._key is not None
        return self._key

    def public_key(self) -> PublicKey:
        return self.key.public_key()

    def public_pem(self) -> bytes:
        return self.public_key().public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)

    def jwks(self) -> dict[str, Any]:
        """The public key as a JSON Web Key Set (what /openid/v1/jwks serves upstream)."""
        pub = self.public_key()
        jwk = json.loads(RSAAlgorithm.to_jwk(pub) if isinstance(pub, rsa.RSAPublicKey) else ECAlgorithm.to_jwk(pub))
        jwk.update({"use": "sig", "alg": algorithm(pub), "kid": key_id(pub)})
        return {"keys": [jwk]}

    def openid_configuration(self, jwks_uri: str) -> dict[str, Any]:
        """The OIDC discovery document upstream serves at /.well-known/openid-configuration, so that
        other parties can verify service-account tokens with the keys at jwks_uri."""
        return {"issuer": self.issuer, "jwks_uri": jwks_uri, "response_types_supported": ["id_token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": [algorithm(self.public_key())]}

    def now(self) -> int:
        return int(self.clock())

    def sign(self, payload: dict[str, Any]) -> str:
        key = self.key
        return jwt.encode(payload, key, algorithm=algorithm(key), headers={"kid": key_id(key.public_key())})

    def verify(self, token: str, audiences: list[str] | None = None, leeway: float = 0) -> dict[str, Any]:
        """The claims of `token` if this issuer signed it, it is within its validity window and one of its
        audiences is in `audiences` (default: the API server's); TokenError otherwise."""
        pub = self.public_key()
        try:
            header = jwt.get_unverified_header(token)
            if header.get("kid") not in (None, key_id(pub)):
                raise TokenError("token signed by an unknown key")
            got = jwt.decode(token, pub, algorithms=[algorithm(pub)], audience=audiences or self.audiences,
                             issuer=self.issuer,
                             options={"require": ["exp", "iat", "nbf", "iss", "sub", "aud"],
                                      "verify_exp": False, "verify_nbf": False, "verify_iat": False})
        except jwt.PyJWTError as e:
            raise TokenError(str(e)) from None
        now = self.clock()  # the issuer's clock, not PyJWT's, so that tests can move time
        if not isinstance(got["exp"], int) or not isinstance(got["nbf"], int):
            raise TokenError("exp and nbf must be integers")
        if now >= got["exp"] + leeway:
            raise TokenError("the token has expired")
        if now < got["nbf"] - leeway:
            raise TokenError("the token is not yet valid (nbf)")
        return got

