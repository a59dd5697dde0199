#!/usr/bin/env python3
"""Writes the hand-made seed corpora under fuzz/seeds/<target>/ (run from anywhere).

Each seed is a meaningful example: a valid input, a boundary, or a known attack shape. The
split-aware targets (frames, proxy_header) take `[config] [k] [k piece lengths] [stream]`; the
others document their first byte in their own doc comment. Key material for the JWKS seeds is
generated fresh (the `cryptography` package); everything else is fixed.
"""
import base64, hashlib, hmac, json, os, struct, sys

ROOT = os.path.dirname(os.path.abspath(__file__))


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def framed(config, lengths, stream):
    return bytes([config, len(lengths)] + list(lengths)) + stream


# ---- frames: RFC 6455 §5 frames --------------------------------------------------------------
def frame(first, payload, mask=None):
    out = bytearray([first])
    m = 0x80 if mask else 0
    n = len(payload)
    if n < 126:
        out.append(m | n)
    elif n <= 0xFFFF:
        out.append(m | 126)
        out += struct.pack(">H", n)
    else:
        out.append(m | 127)
        out += struct.pack(">Q", n)
    if mask:
        out += mask
        out += bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    else:
        out += payload
    return bytes(out)


K = b"\x11\x22\x33\x44"
CLIENT, CHECK, DEFLATE, MAXF, MAXM, GATE = 1, 2, 4, 8, 16, 32
ours = b"wsgate-keepalive"
client = (frame(0x81, b"hello", K) + frame(0x02, b"\x07" * 300, K) + frame(0x89, b"ping", K)
          + frame(0x8A, ours, K) + frame(0x00, b"\x08" * 1000, K) + frame(0x80, b"", K)
          + frame(0x88, b"\x03\xe8ok", K))
put("frames", "client_fragmented_interleaved_controls", framed(CLIENT | CHECK, [1, 5, 13], client))
backend = (frame(0x01, b"he") + frame(0x8A, b"pong") + frame(0x00, b"ll") + frame(0x89, b"")
           + frame(0x80, b"o") + frame(0x82, b"\x00" * 200) + frame(0x88, b""))
put("frames", "backend_fragmented_interleaved_controls", framed(CHECK, [2, 1, 3], backend))
put("frames", "backend_rules_off", framed(0, [7], backend))
put("frames", "deflate_rsv1_first_frame", framed(CLIENT | CHECK | DEFLATE, [3],
    frame(0x41, b"abc", K) + frame(0x80, b"d", K) + frame(0xC1, b"x", K)))
put("frames", "rsv1_without_deflate", framed(CLIENT | CHECK, [], frame(0xC1, b"x", K)))
put("frames", "client_frame_unmasked", framed(CLIENT | CHECK, [1], frame(0x81, b"hi")))
put("frames", "length_msb_set", framed(CHECK, [4], b"\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x01xx"))
put("frames", "length_2_63_minus_1", framed(CHECK, [9], b"\x82\x7f\x7f\xff\xff\xff\xff\xff\xff\xff" + b"z" * 40))
put("frames", "frame_over_max_frame", framed(CLIENT | CHECK | MAXF, [2], frame(0x82, b"\x01" * 1001, K)))
put("frames", "message_over_max_message", framed(CLIENT | CHECK | MAXM, [100],
    frame(0x02, b"\x01" * 3000, K) + frame(0x80, b"\x01" * 2500, K)))
put("frames", "gate_fourth_message", framed(CLIENT | CHECK | GATE, [1],
    b"".join(frame(0x81, b"m", K) for _ in range(4))))
put("frames", "close_one_byte", framed(CHECK, [], frame(0x88, b"\x03")))
put("frames", "close_code_1005", framed(CHECK, [1], frame(0x88, b"\x03\xed")))
put("frames", "close_reason_not_utf8", framed(CHECK, [3], frame(0x88, b"\x03\xe8\xff\xfe")))
put("frames", "ping_fragmented", framed(CHECK, [], frame(0x09, b"p")))
put("frames", "ping_126_bytes", framed(CHECK, [1], frame(0x89, b"p" * 126)))
put("frames", "continuation_without_start", framed(CHECK, [], frame(0x80, b"x")))
put("frames", "new_message_inside_fragmented", framed(CHECK, [], frame(0x01, b"a") + frame(0x81, b"b")))
put("frames", "reserved_opcode", framed(CHECK, [], frame(0x83, b"")))
put("frames", "header_split_16bit_len_masked", framed(CLIENT | CHECK, [1, 1, 1, 1, 1, 1, 1, 200],
    frame(0x82, b"\x05" * 500, K)))

# ---- upgrade_request: client request heads ---------------------------------------------------
GOOD = ("GET /chat HTTP/1.1\r\nHost: Ws.Test:8443\r\nUpgrade: WebSocket\r\n"
        "Connection: keep-alive\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, superchat\r\n"
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
        "Origin: https://ws.test\r\n\r\n")
put("upgrade_request", "browser_handshake", GOOD)
put("upgrade_request", "h2c_upgrade", GOOD.replace("WebSocket\r\n", "h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n", 1))
put("upgrade_request", "dot_segments_encoded", GOOD.replace("/chat", "/a/%2e%2E/chat/./x//y?q=1&access_token=t", 1))
put("upgrade_request", "above_root", GOOD.replace("/chat", "/../../etc/passwd", 1))
put("upgrade_request", "absolute_form", GOOD.replace("/chat", "http://evil.test/chat", 1))
put("upgrade_request", "asterisk_form", GOOD.replace("GET /chat", "OPTIONS *", 1))
put("upgrade_request", "cl_and_te", GOOD.replace("\r\n\r\n", "\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 1))
put("upgrade_request", "content_length_list", GOOD.replace("\r\n\r\n", "\r\nContent-Length: 0, 0\r\n\r\n", 1))
put("upgrade_request", "two_hosts", GOOD.replace("Host: Ws.Test:8443", "Host: a.test\r\nHost: b.test", 1))
put("upgrade_request", "ipv6_host", GOOD.replace("Ws.Test:8443", "[0:0::1]:8443", 1))
put("upgrade_request", "obs_fold", GOOD.replace("Upgrade: WebSocket", "Upgrade:\r\n WebSocket", 1))
put("upgrade_request", "http10", GOOD.replace("HTTP/1.1", "HTTP/1.0", 1))
put("upgrade_request", "key_15_bytes", GOOD.replace("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZQ", 1))
put("upgrade_request", "percent_nul", GOOD.replace("/chat", "/chat%00.html", 1))
put("upgrade_request", "many_fields", GOOD.replace("\r\n\r\n", "\r\n" + "".join(f"X-{i}: {i}\r\n" for i in range(120)) + "\r\n", 1))

# ---- backend_answer: what a backend sends back -----------------------------------------------
ACCEPT = base64.b64encode(hashlib.sha1(b"dGhlIHNhbXBsZSBub25jZQ==258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()).decode()
OK101 = ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         f"Sec-WebSocket-Accept: {ACCEPT}\r\n")
PROTO, EXT, SMALL = 1, 2, 4
put("backend_answer", "upgrade_with_frames_behind", bytes([0]) + (OK101 + "\r\n").encode() + frame(0x81, b"welcome") + frame(0x89, b""))
put("backend_answer", "upgrade_protocol_chat", bytes([PROTO]) + (OK101 + "Sec-WebSocket-Protocol: chat\r\n\r\n").encode())
put("backend_answer", "upgrade_protocol_not_offered", bytes([PROTO]) + (OK101 + "Sec-WebSocket-Protocol: x\r\n\r\n").encode())
put("backend_answer", "upgrade_deflate", bytes([EXT]) + (OK101 + "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n\r\n").encode())
put("backend_answer", "upgrade_accept_wrong", bytes([0]) + OK101.replace(ACCEPT, "AAAAAAAAAAAAAAAAAAAAAAAAAAA=").encode() + b"\r\n")
put("backend_answer", "upgrade_http10", bytes([0]) + OK101.replace("HTTP/1.1", "HTTP/1.0").encode() + b"\r\n")
put("backend_answer", "interim_100_then_101", bytes([0]) + b"HTTP/1.1 100 Continue\r\n\r\n" + (OK101 + "\r\n").encode())
put("backend_answer", "relay_403_content_length", b"\x00HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\nno way")
put("backend_answer", "relay_chunked", b"\x00HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n")
put("backend_answer", "chunk_size_u64_max", b"\x00HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nabc")
put("backend_answer", "chunk_size_overflow", b"\x00HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\nabc\r\n0\r\n\r\n")
put("backend_answer", "chunked_over_small_bound", bytes([SMALL]) + b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n" + b"x" * 32 + b"\r\n0\r\n\r\n")
put("backend_answer", "content_length_huge", b"\x00HTTP/1.1 404 Not Found\r\nContent-Length: 99999999999999999999\r\n\r\nx")
put("backend_answer", "content_length_u64_max", b"\x00HTTP/1.1 404 Not Found\r\nContent-Length: 18446744073709551615\r\n\r\nx")
put("backend_answer", "cl_and_te", b"\x00HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
put("backend_answer", "bad_status_line", b"\x00HTTP/1.1 2OO OK\r\n\r\n")
put("backend_answer", "status_999", b"\x00HTTP/1.1 999 Odd\r\nContent-Length: 0\r\n\r\n")
put("backend_answer", "not_http", b"\x00SSH-2.0-OpenSSH_9.6\r\n")
put("backend_answer", "closed_mid_head", b"\x00HTTP/1.1 101 Switching Protocols\r\nUpgrade: webs")
put("backend_answer", "closed_mid_body", b"\x00HTTP/1.1 500 Internal Server Error\r\nContent-Length: 100\r\n\r\nabc")

# ---- proxy_header: PROXY v1/v2 ---------------------------------------------------------------
HELLO = b"\x16\x03\x01\x00\x05hello"
put("proxy_header", "v1_tcp4", framed(0, [1], b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n" + HELLO))
put("proxy_header", "v1_tcp6", framed(0, [3, 7], b"PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n" + HELLO))
put("proxy_header", "v1_unknown", framed(0, [], b"PROXY UNKNOWN\r\n" + HELLO))
put("proxy_header", "v1_no_crlf_107", framed(0, [50], b"PROXY TCP4 " + b"1" * 120))
# Found by this target (tests/fuzz_regressions.rs): a CR, then a two-byte character.
put("proxy_header", "v1_cr_then_multibyte", framed(0, [3], b"PROXY UNKNOWN\r\xc3\xa9\r\n" + HELLO))
put("proxy_header", "v1_lf_only", framed(0, [], b"PROXY TCP4 192.0.2.1 198.51.100.2 1 2\n" + HELLO))
SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2(cmd, fam, addrs, tlvs=b""):
    body = addrs + tlvs
    return SIG + bytes([0x20 | cmd, fam]) + struct.pack(">H", len(body)) + body


def tlv(t, v):
    return bytes([t]) + struct.pack(">H", len(v)) + v


tcp4 = bytes([192, 0, 2, 1, 198, 51, 100, 2]) + struct.pack(">HH", 56324, 443)
tlvs = (tlv(0x01, b"h2") + tlv(0x02, b"ws.test") + tlv(0x05, b"\x00\x01\x02\x03")
        + tlv(0x20, b"\x07\x00\x00\x00\x00" + tlv(0x21, b"TLSv1.3") + tlv(0x22, b"CN=client"))
        + tlv(0x04, b"\x00\x00"))
put("proxy_header", "v2_tcp4_tlvs", framed(0, [1, 2, 3], v2(1, 0x11, tcp4, tlvs) + HELLO))
tcp6 = bytes(range(16)) + bytes(range(16, 32)) + struct.pack(">HH", 1, 2)
put("proxy_header", "v2_tcp6", framed(0, [16], v2(1, 0x21, tcp6) + HELLO))
put("proxy_header", "v2_local", framed(0, [], v2(0, 0x00, b"") + HELLO))
put("proxy_header", "v2_unix", framed(0, [200], v2(1, 0x31, b"/tmp/a".ljust(108, b"\0") + b"/tmp/b".ljust(108, b"\0")) + HELLO))
put("proxy_header", "v2_udp4", framed(0, [], v2(1, 0x12, tcp4) + HELLO))
put("proxy_header", "v2_too_long", framed(0, [4], SIG + b"\x21\x11\x02\x10" + b"\0" * 600))
put("proxy_header", "v2_short_addresses", framed(0, [1], SIG + b"\x21\x11\x00\x04" + b"\1\2\3\4" + HELLO))
put("proxy_header", "v2_bad_tlv_length", framed(0, [], v2(1, 0x11, tcp4, b"\x02\x00\xff" + b"x") + HELLO))
put("proxy_header", "tls_without_header", framed(0, [], HELLO + b"\0" * 8))

# ---- config_yaml -----------------------------------------------------------------------------
MIN = """listeners:
  - name: public
    bind: "127.0.0.1:8443"
    tls:
      self_signed: [ws.test]
routes:
  - host: ws.test
    path: /chat
    pool: chat
pools:
  chat:
    backends:
      - url: "ws://127.0.0.1:9601"
"""
put("config_yaml", "minimal", MIN)
put("config_yaml", "jwt_route", MIN.replace("    pool: chat\n", """    pool: chat
    origins: ["https://ws.test", "https://*.ws.test"]
    auth:
      jwt:
        keys:
          - { secret_env: FUZZ_SECRET, alg: HS256 }
          - { jwks_url: "https://id.test/jwks.json" }
        issuer: https://id.test
        audience: chat
        require: { scope: chat }
      token_from: [header, { query: access_token }, { cookie: session }, subprotocol]
    session:
      max_lifetime: 12h
      max_message: 64KiB
      messages: { rate: "20/s", burst: 40 }
""", 1))
put("config_yaml", "limits_units", MIN + """limits:
  max_request_header_bytes: 16KiB
  backend_connect_timeout: 1500ms
  per_ip: { handshakes: "5/s", burst: 10 }
""")
laughs = "a: &a [x, x, x, x, x, x, x, x, x]\n"
for i, n in enumerate("bcdefghij"):
    prev = "abcdefghij"[i]
    laughs += f"{n}: &{n} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
put("config_yaml", "billion_laughs", laughs + "listeners: *j\n")
put("config_yaml", "deep_nesting_flow", "listeners: " + "[" * 1000 + "]" * 1000 + "\n")
put("config_yaml", "deep_nesting_block", "".join("  " * i + "- \n" for i in range(100)))
put("config_yaml", "deep_nesting_maps", "".join(" " * i + f"k{i}:\n" for i in range(100)))
put("config_yaml", "merge_keys", "base: &b {bind: '127.0.0.1:1'}\nlisteners:\n  - <<: *b\n    <<: *b\n    name: x\n")
put("config_yaml", "two_documents", MIN + "---\n" + MIN)
put("config_yaml", "unknown_key_tab_and_controls", MIN + "bogus\t\x01: \"\\u0007\\n\"\n")
put("config_yaml", "wrong_types", MIN.replace('"127.0.0.1:8443"', "[1, 2]").replace("/chat", "{a: b}"))

# ---- jwt_token -------------------------------------------------------------------------------
SECRET = b"0123456789abcdef0123456789abcdef"


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def hs256(header, claims):
    msg = b64u(json.dumps(header).encode()) + "." + b64u(json.dumps(claims).encode())
    sig = hmac.new(SECRET, msg.encode(), hashlib.sha256).digest()
    return msg + "." + b64u(sig)


CL = {"sub": "alice", "iss": "https://id.test", "aud": "chat", "exp": 4102444800, "scope": "chat:read chat:write"}
tok = hs256({"alg": "HS256", "typ": "JWT"}, CL)
REQ = "GET /chat{q} HTTP/1.1\r\nHost: ws.test\r\n{f}\r\n"
put("jwt_token", "req_bearer", b"\x00" + REQ.format(q="", f=f"Authorization: Bearer {tok}\r\n").encode())
put("jwt_token", "req_query", b"\x00" + REQ.format(q=f"?x=1&access%5Ftoken={tok}&y", f="").encode())
put("jwt_token", "req_cookie", b"\x00" + REQ.format(q="", f=f"Cookie: a=b; session=\"{tok}\"; c\r\n").encode())
put("jwt_token", "req_subprotocol", b"\x00" + REQ.format(q="", f=f"Sec-WebSocket-Protocol: chat, bearer.wsgate, {tok}\r\n").encode())
put("jwt_token", "req_two_sources_duplicate", b"\x00" + REQ.format(q=f"?access_token={tok}&access_token=x", f=f"Cookie: session=1\r\nCookie: session=2\r\n").encode())
put("jwt_token", "req_basic_not_bearer", b"\x00" + REQ.format(q="", f="Authorization: Basic YTpi\r\n").encode())


def signed(header, claims):
    h = header if isinstance(header, bytes) else json.dumps(header).encode()
    c = claims if isinstance(claims, bytes) else json.dumps(claims).encode()
    return b"\x01" + h + b"\xff" + c


put("jwt_token", "signed_good", signed({"alg": "HS256", "typ": "JWT"}, CL))
put("jwt_token", "signed_kid", signed({"alg": "HS256", "kid": "k1"}, dict(CL, scope=["chat:write"])))
put("jwt_token", "signed_unknown_kid", signed({"alg": "HS256", "kid": "nope"}, CL))
put("jwt_token", "signed_alg_none", signed({"alg": "none"}, CL))
put("jwt_token", "signed_expired", signed({"alg": "HS256"}, dict(CL, exp=1)))
put("jwt_token", "signed_exp_float_nbf_future", signed({"alg": "HS256"}, dict(CL, exp=4102444800.5, nbf=4102444000)))
put("jwt_token", "signed_aud_array_wrong_iss", signed({"alg": "HS256"}, dict(CL, aud=["x", "chat"], iss="https://evil.test")))
put("jwt_token", "signed_claims_control_chars", signed({"alg": "HS256"}, dict(CL, sub="a\r\nX-Admin: 1", email={"n": [1, None]})))
put("jwt_token", "signed_crit_header", signed({"alg": "HS256", "crit": ["exp"], "jku": "https://evil.test"}, CL))
put("jwt_token", "signed_not_json", signed(b"{\"alg\":\"HS256\"", b"[[[["))
put("jwt_token", "raw_token", b"\x01" + tok.encode())
put("jwt_token", "raw_garbage_segments", b"\x01a.b.c.d")

# ---- jwks ------------------------------------------------------------------------------------
try:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from cryptography.hazmat.primitives import serialization

    def n2b(n, size=None):
        size = size or (n.bit_length() + 7) // 8
        return n.to_bytes(size, "big")

    r = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_numbers()
    RSA = {"kty": "RSA", "kid": "rsa1", "use": "sig", "n": b64u(n2b(r.n)), "e": b64u(n2b(r.e))}
    p = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()
    EC = {"kty": "EC", "crv": "P-256", "kid": "ec1", "x": b64u(n2b(p.x, 32)), "y": b64u(n2b(p.y, 32))}
    q = ec.generate_private_key(ec.SECP384R1()).public_key().public_numbers()
    EC384 = {"kty": "EC", "crv": "P-384", "alg": "ES384", "x": b64u(n2b(q.x, 48)), "y": b64u(n2b(q.y, 48))}
    ed = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    OKP = {"kty": "OKP", "crv": "Ed25519", "kid": "ed1", "x": b64u(ed)}
except ImportError:
    sys.exit("the JWKS seeds need the `cryptography` package")
OCT = {"kty": "oct", "alg": "HS256", "kid": "k1", "k": b64u(SECRET)}
put("jwks", "mixed_set", json.dumps({"keys": [RSA, EC, EC384, OKP, OCT]}))
put("jwks", "encryption_key_skipped", json.dumps({"keys": [dict(RSA, use="enc"), EC]}))
put("jwks", "alg_mismatch", json.dumps({"keys": [dict(EC, alg="RS256"), dict(RSA, alg="ES256"), dict(OCT, alg="RS256")]}))
put("jwks", "unknown_alg_and_curve", json.dumps({"keys": [dict(EC, alg="XX999"), dict(EC, crv="P-521"), dict(OKP, crv="X25519")]}))
put("jwks", "rsa_tiny_and_even_modulus", json.dumps({"keys": [dict(RSA, n="AQ"), dict(RSA, n=b64u(b"\xff" * 255 + b"\x00"), e="AQAB")]}))
put("jwks", "ec_point_off_curve", json.dumps({"keys": [dict(EC, y=b64u(b"\x01" * 32)), dict(EC, x="", y="")]}))
put("jwks", "oct_empty_secret", json.dumps({"keys": [dict(OCT, k="")]}))
put("jwks", "not_a_set", json.dumps({"key": [RSA]}))
put("jwks", "deep_nesting", '{"keys":' + "[" * 200 + "]" * 200 + "}")
put("jwks", "bad_base64", json.dumps({"keys": [dict(RSA, n="!!!"), dict(OKP, x="a=b")]}))

# ---- admin_body ------------------------------------------------------------------------------
for name, body in [
    ("close_by_subject", {"subject": "alice"}),
    ("close_all_fields", {"id": 1, "subject": "alice", "route": "chat", "client": "127.0.0.1",
                          "code": 4000, "reason": "bye", "scope": "local"}),
    ("close_ipv6_client", {"client": "::ffff:127.0.0.1", "code": 1001}),
    ("close_fleet_scope", {"route": "chat", "scope": "fleet"}),
    ("close_no_selector", {"code": 1000}),
    ("close_bad_code", {"subject": "alice", "code": 1005}),
    ("close_reason_too_long", {"subject": "alice", "reason": "é" * 62}),
    ("close_unknown_field", {"subject": "alice", "extra": True}),
]:
    put("admin_body", name, b"\x00" + json.dumps(body).encode())
put("admin_body", "close_id_overflow", b'\x00{"id": 18446744073709551616}')
put("admin_body", "close_duplicate_key", b'\x00{"subject": "a", "subject": "b"}')
put("admin_body", "close_deep_nesting", b'\x00{"subject":' + b"[" * 500 + b"]" * 500 + b"}")
put("admin_body", "list_query", b"\x01subject=alice&route=chat")
put("admin_body", "list_query_encoded", b"\x01subject=al%69ce+x&route=%zz&")
put("admin_body", "list_query_unknown", b"\x01limit=10")
