#!/usr/bin/env python3
"""Keys and tokens for the JWKS fault (issue #13, fault d).

Writes into DIR: good.json (a JWKS with ES256 key k1), rotated.json (k1 and a new key k2),
garbage.json (not JSON), empty.json (valid JSON, no keys), token-k1 and token-k2 (ES256
tokens, sub "fault", valid one hour).

usage: jwt_keys.py DIR
"""
import base64
import json
import sys
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwk(kid, key):
    n = key.public_key().public_numbers()
    return {"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
            "x": b64(n.x.to_bytes(32, "big")), "y": b64(n.y.to_bytes(32, "big"))}


def token(kid, key):
    head = b64(json.dumps({"alg": "ES256", "typ": "JWT", "kid": kid}).encode())
    claims = b64(json.dumps({"sub": "fault", "iat": int(time.time()),
                             "exp": int(time.time()) + 3600}).encode())
    der = key.sign(f"{head}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return f"{head}.{claims}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


d = sys.argv[1]
k1, k2 = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
files = {
    "good.json": json.dumps({"keys": [jwk("k1", k1)]}),
    "rotated.json": json.dumps({"keys": [jwk("k1", k1), jwk("k2", k2)]}),
    "garbage.json": "<html>502 Bad Gateway</html>{{{",
    "empty.json": json.dumps({"keys": []}),
    "token-k1": token("k1", k1),
    "token-k2": token("k2", k2),
}
for name, text in files.items():
    with open(f"{d}/{name}", "w") as f:
        f.write(text)
