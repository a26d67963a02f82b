#!/usr/bin/env python3
"""Known-answer vectors for package esp, made independently of its Go code.

Builds complete ESP packets (RFC 4303) with the AEADs of the Python
`cryptography` package (OpenSSL underneath): AES-GCM per RFC 4106 and
ChaCha20-Poly1305 per RFC 7634, nonce = salt(4) || IV(8), AAD = SPI || seq
or, with ESN (RFC 4304), SPI || seq_hi || seq_lo, padding to 4-byte
alignment with bytes 1, 2, 3.

Writes, next to this directory:
  ../vectors.json    generated packets, IV = 64-bit sequence number (what
                     Outbound.Seal produces)
  ../published.json  the published ESP vectors below, after checking each one
                     against the AEAD here (a transcription error fails)

Run from anywhere:  python3 internal/tunnel/esp/testdata/gen/gen_vectors.py
Deterministic: same output on every run.
"""

import hashlib
import json
import os
import struct
import sys

from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.dirname(HERE)

KEYLEN = {"aes-gcm-128": 16, "aes-gcm-256": 32, "chacha20-poly1305": 32}


def aead(cipher, key):
    if cipher.startswith("aes-gcm"):
        return AESGCM(key)
    return ChaCha20Poly1305(key)


def aad_of(spi, seq, esn):
    if esn:
        return struct.pack(">IQ", spi, seq)
    assert seq < 1 << 32
    return struct.pack(">II", spi, seq)


def trailer(n, nh):
    pad = (4 - (n + 2) % 4) % 4
    return bytes(range(1, pad + 1)) + bytes([pad, nh])


def esp_packet(cipher, keymat, spi, seq, esn, iv, plaintext):
    key, salt = keymat[:-4], keymat[-4:]
    assert len(key) == KEYLEN[cipher]
    ivb = struct.pack(">Q", iv)
    ct = aead(cipher, key).encrypt(salt + ivb, plaintext, aad_of(spi, seq, esn))
    return struct.pack(">II", spi, seq & 0xFFFFFFFF) + ivb + ct


def drbg(label, n):
    """Deterministic bytes (SHA-256 in counter mode) for keys and payloads."""
    out = b""
    i = 0
    while len(out) < n:
        out += hashlib.sha256(f"{label}/{i}".encode()).digest()
        i += 1
    return out[:n]


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f">{len(b)//2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ipv4_icmp(total, ident):
    """An IPv4 ICMP echo request of `total` bytes, 192.0.2.1 -> 198.51.100.1."""
    data = drbg(f"icmp4/{total}/{ident}", total - 28)
    icmp = struct.pack(">BBHHH", 8, 0, 0, ident, 1) + data
    icmp = icmp[:2] + struct.pack(">H", csum(icmp)) + icmp[4:]
    hdr = struct.pack(">BBHHHBBH4s4s", 0x45, 0, total, ident, 0x4000, 64, 1, 0,
                      bytes([192, 0, 2, 1]), bytes([198, 51, 100, 1]))
    hdr = hdr[:10] + struct.pack(">H", csum(hdr)) + hdr[12:]
    return hdr + icmp


def ipv6_udp(total, ident):
    """An IPv6 UDP datagram of `total` bytes, 2001:db8::1 -> 2001:db8:1::1."""
    plen = total - 40
    data = drbg(f"udp6/{total}/{ident}", plen - 8)
    udp = struct.pack(">HHHH", 40000 + ident, 5001, plen, 0) + data  # checksum left 0: opaque to ESP
    src = bytes.fromhex("20010db8000000000000000000000001")
    dst = bytes.fromhex("20010db8000100000000000000000001")
    return struct.pack(">IHBB", 0x60000000, plen, 17, 64) + src + dst + udp


def gre(inner, proto, key=None):
    flags = 0x2000 if key is not None else 0
    h = struct.pack(">HH", flags, proto)
    if key is not None:
        h += struct.pack(">I", key)
    return h + inner


def generated():
    cases = []
    specs = [
        # (name, payload, next header, esn, seq)
        ("ipv4-icmp-84", ipv4_icmp(84, 1), 4, False, 1),
        ("ipv4-icmp-85", ipv4_icmp(85, 2), 4, False, 2),
        ("ipv4-icmp-86", ipv4_icmp(86, 3), 4, False, 3),
        ("ipv4-icmp-87", ipv4_icmp(87, 4), 4, False, 0x1234),
        ("ipv4-icmp-1400", ipv4_icmp(1400, 5), 4, False, 0xFFFFFFFF),
        ("ipv6-udp-48", ipv6_udp(48, 1), 41, False, 7),
        ("ipv6-udp-49", ipv6_udp(49, 2), 41, False, 8),
        ("ipv6-udp-1420", ipv6_udp(1420, 3), 41, False, 9),
        ("gre-key-ipv4", gre(ipv4_icmp(84, 6), 0x0800, key=0x0000002A), 47, False, 10),
        ("gre-ipv6", gre(ipv6_udp(61, 4), 0x86DD), 47, False, 11),
        ("dummy-empty", b"", 59, False, 12),
        ("dummy-1", b"\x00", 59, False, 13),
        ("esn-first", ipv4_icmp(100, 7), 4, True, 1),
        ("esn-last-low", ipv4_icmp(101, 8), 4, True, 0xFFFFFFFF),
        ("esn-wrap", ipv4_icmp(102, 9), 4, True, 0x1_00000000),
        ("esn-wrap-ipv6", ipv6_udp(103, 5), 41, True, 0x1_00000001),
        ("esn-high", gre(ipv6_udp(200, 6), 0x86DD, key=7), 47, True, 0xDEADBEEF_00000123),
    ]
    for cipher in ("aes-gcm-128", "aes-gcm-256", "chacha20-poly1305"):
        keymat = drbg(f"key/{cipher}", KEYLEN[cipher] + 4)
        spi = int.from_bytes(drbg(f"spi/{cipher}", 4), "big") | 0x100
        for name, payload, nh, esn, seq in specs:
            pt = payload + trailer(len(payload), nh)
            pkt = esp_packet(cipher, keymat, spi, seq, esn, seq, pt)
            cases.append({
                "name": f"{cipher}/{name}",
                "cipher": cipher,
                "key": keymat.hex(),
                "spi": spi,
                "esn": esn,
                "seq": seq,
                "iv": seq,
                "next_header": nh,
                "payload": payload.hex(),
                "packet": pkt.hex(),
            })
    return cases


# Published vectors. Each gives the SA (key, salt, SPI), the AAD and nonce as
# printed, the ESP plaintext (payload + padding + pad length + next header)
# and the ciphertext || ICV.
PUBLISHED = [
    {
        # RFC 7634 Appendix A (ESP example); transcription as in strongSwan
        # src/libstrongswan/plugins/test_vectors/test_vectors/chacha20poly1305.c
        "name": "rfc7634-appendix-a",
        "source": "RFC 7634 Appendix A",
        "cipher": "chacha20-poly1305",
        "key": "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
        "salt": "a0a1a2a3",
        "iv": "1011121314151617",
        "aad": "0102030400000005",
        "plaintext": "45000054a6f200004001e778c6336405c000020508005b7a3a080000553bec10"
                     "0007362708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223"
                     "2425262728292a2b2c2d2e2f303132333435363701020204",
        "ciphertext": "24039428b97f417e3c13753a4f05087b67c352e6a7fab1b982d466ef407ae5c6"
                      "14ee8099d52844eb61aa95dfab4c02f72aa71e7c4c4f64c9befe2facc638e8f3"
                      "cbec163fac469b502773f6fb94e664da9165b82829f641e076aaa8266b7fb0f7"
                      "b11b369907e1ad43",
    },
]

# draft-mcgrew-gcm-test-01 ("GCM Test Vectors for ESP"), the AES-128/256
# cases (the AES-192 case is left out: not an havpn cipher). Nonce = salt ||
# IV; AAD of 8 bytes = SPI || seq, of 12 bytes = SPI || ESN.
MCGREW = [
    ("4c80cdefbb5d10da906ac73c3613a634", "2e443b684956ed7e3b244cfe", "000043218765432100000000",
     "45000048699a000080114db7c0a80102c0a801010a9bf15638d301000001000000000000045f736970045f756470037369700963796265726369747902646b000021000101020201",
     "fecf537e729d5b07dc30df528dd22b768d1b98736696a6fd348509fa13ceac34cfa2436f14a3f3cf65925bf1f4a13c5d15b21e1884f5ff6247aeabb786b93bce61bc17d768fd9732",
     "459018148f6cbe722fd04796562dfdb4"),
    ("feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888", "0000a5f80000000a",
     "4500003e698f000080114dccc0a80102c0a801010a980035002a2343b2d001000001000000000000037369700963796265726369747902646b00000100010001",
     "deb22cd9b07c72c16e3a65beeb8df304a5a5897d33ae530f1ba76d5d114d2a5c3de81827c10e9a4f51330d0eec416642cfbb85a5b47e48a4ec3b9ba95d918bd1",
     "83b70d3aa8bc6ee4c309e9d85a41ad4a"),
    ("abbccddef00112233445566778899aababbccddef00112233445566778899aab", "112233440102030405060708", "4a2cbfe300000002",
     "4500003069a6400080062690c0a801029389155e0a9e008b2dc57ee0000000007002400020bf0000020405b40101040201020201",
     "ff425c9b724599df7a3bcd510194e00d6a78107f1b0b1cbf06efae9d65a5d763748a637985771d347f0545659f14e99def842d8e",
     "b335f4eecfdbf831824b4c4915956c96"),
    ("00000000000000000000000000000000", "000000000000000000000000", "0000000000000001",
     "4500003c99c500008001cb7a40679318010101010800075c020044006162636465666768696a6b6c6d6e6f707172737475767761626364656667686901020201",
     "4688daf2f973a392732909c331d56d60f694abaa414b5e7ff5fdcdfff5e9a284456476492719ffb64de7d9dca1e1d894bc3bd57873ed4d181d19d4d5c8c18af3",
     "f821d496eeb096e98ad2b69e4799c71d"),
    ("3de09874b388e6491988d0c3607eae1f", "57690e434e280000a2fca1a3", "42f67e3f1010101010101010",
     "4500003c99c300008001cb7c40679318010101010800085c020043006162636465666768696a6b6c6d6e6f707172737475767761626364656667686901020201",
     "fba2caa4853cf9f0f22cb10d86dd83b0fec75691cf1a04b00d1138ec9c35791765acbd8701ad79845bf9fe3fba487bc91755e6662b4c8d0d1f5e22739530320a",
     "e0d731cc978ecafaeae88f00e80d6e48"),
    ("3de09874b388e6491988d0c3607eae1f", "57690e434e280000a2fca1a3", "42f67e3f1010101010101010",
     "4500001c42a200008001441f406793b6e00000020a00f5ff01020201",
     "fba2ca845e5df9f0f22c3e6e86dd831e1fc65792cd1af9130e1379ed",
     "369f071f35e034be95f112e4e7d05d35"),
    ("abbccddef00112233445566778899aab", "decaf888cafedebaceface74", "000001000000000000000001",
     "4500004933ba00007f119106c3fb1d10c2b1d326c02831ce0035dd7b800302d500004e20001e8c18d75b81dc91baa0476b91b924b280389d92c963bac046ec959b6266c04722b14923010101",
     "18a6fd42f72cbf4ab2a2ea901f73d814e3e7f243d95412e1c349c1d2fbec168f9190feebaf2cb01984e65863965d7472b79da345e0e780191f0d2f0e0f496c226f2127b27db35724e7845d68",
     "651f57e65f354f75ff17015769623436"),
    ("abbccddef00112233445566778899aababbccddef00112233445566778899aab", "73616c74616e640169766563", "17405e67156f3126dd0db99b",
     "45080028732c00004006e9f90a0106120a01038f06b88023dd6bafbecb71260250101f646d540001",
     "f2d69ecdbd5a0d5b8d5ef38bad4da58d1f278fde98ef67549d524a3018d9a57ff4d3a31ce673119e",
     "451626c2415771e3b7eebca614c89b35"),
    ("3de09874b388e6491988d0c3607eae1f", "57690e434e280000a2fca1a3", "42f67e3f1010101010101010",
     "45000049333e00007f119182c3fb1d10c2b1d326c02831ce0035cb458003025b000001e0001e8c18d65759d52284a0352c71475c8880391c764d6e5ee0496b325ae270c03899493915010101",
     "fba2cad12fc1f9f00d3cebf305410db83d7784b607323d220f24b0a97d54182800cadb0f68d99ef0e0c0c89ae9bea8884e52d65bc1afd0740f742444747b5b39ab533163aad4550ee5160975",
     "cdb608c5769189609763b8e18caa81e2"),
    ("abbccddef00112233445566778899aababbccddef00112233445566778899aab", "73616c74616e640169766563", "17405e67156f3126dd0db99b",
     "636973636f0172756c657301746865016e6574776501646566696e6501746865746563686e6f6c6f67696573017468617477696c6c01646566696e65746f6d6f72726f7701020201",
     "d4b7ed86a1777f2ea13d6973d324c69e7b43f826fb56831226508bebd2dceb18d0a6df10e5487df074113e14c641024e3e6773d91a62ee429b043a10e3efe6b012a49363412364f8",
     "c0cac587f249e56b11e24f30e44ccc76"),
    ("7d773d00c144c525ac619d18c84a3f47", "d966426743457e9182443bc6", "335467aeffffffff",
     "01020201", "437f866b", "cb3f699fe9b0822bac961c4504bef270"),
    ("abbccddef00112233445566778899aab", "decaf888cafedebaceface74", "000001000000000000000001",
     "746f016265016f72016e6f7401746f0162650001", "29c9fc69a197d038ccdd14e2ddfcaa0543332164",
     "412503524303ed3c6c5f283843af8c3e"),
    ("6c6567616c697a656d6172696a75616e61616e64646f69746265666f72656961", "7475726e333021696765746d", "796b6963ffffffffffffffff",
     "45000030da3a00008001df3bc0a80005c0a800010800c6cd020007006162636465666768696a6b6c6d6e6f707172737401020201",
     "f97ab2aa356d8edce17644ac8c78e25dd24dedbb29ebf1b64a274b39b49c3a864cd3d78ca4ae68a32b42458fb57dbe821dcc63b9",
     "d0937ba2945f669368661a329fb4c053"),
]


def published():
    src = list(PUBLISHED)
    for i, (key, nonce, aad, pt, ct, tag) in enumerate(MCGREW):
        src.append({
            "name": f"mcgrew-gcm-test-01/{i + 1}",
            "source": "draft-mcgrew-gcm-test-01 (AES-128/256 cases, in document order)",
            "cipher": "aes-gcm-128" if len(key) == 32 else "aes-gcm-256",
            "key": key, "salt": nonce[:8], "iv": nonce[8:], "aad": aad,
            "plaintext": pt, "ciphertext": ct + tag,
        })
    out = []
    for v in src:
        key, salt, iv, aad = (bytes.fromhex(v[k]) for k in ("key", "salt", "iv", "aad"))
        pt, ct = bytes.fromhex(v["plaintext"]), bytes.fromhex(v["ciphertext"])
        got = aead(v["cipher"], key).encrypt(salt + iv, pt, aad)
        if got != ct:
            sys.exit(f"{v['name']}: published ciphertext does not match this AEAD: transcription error")
        if len(aad) == 8:
            spi, seq = struct.unpack(">II", aad)
            esn = False
        else:
            spi, seq = struct.unpack(">IQ", aad)
            esn = True
        pad, nh = pt[-2], pt[-1]
        payload = pt[: len(pt) - 2 - pad]
        assert pt[len(payload):-2] == bytes(range(1, pad + 1)), v["name"]
        out.append({
            "name": v["name"],
            "source": v["source"],
            "cipher": v["cipher"],
            "key": (key + salt).hex(),
            "spi": spi,
            "esn": esn,
            "seq": seq,
            "iv": int.from_bytes(iv, "big"),
            "next_header": nh,
            "pad": pad,
            "payload": payload.hex(),
            "packet": (struct.pack(">II", spi, seq & 0xFFFFFFFF) + iv + ct).hex(),
        })
    return out


def write(name, cases):
    with open(os.path.join(OUT, name), "w") as f:
        json.dump(cases, f, indent=1)
        f.write("\n")


def main():
    write("vectors.json", generated())
    write("published.json", published())


if __name__ == "__main__":
    main()
