#!/usr/bin/env python3
"""Independent IKEv2 key-derivation and AUTH vectors for package ikecrypto.

Written from RFC 7296 (2.13 prf+, 2.14 SKEYSEED/SK_*, 2.15 AUTH, 2.17 KEYMAT,
2.18 rekey), RFC 5282 (AES-GCM SK), RFC 5903/8031 (ECP/X25519 KE encoding),
RFC 7427 (signature AUTH) with only the Python standard library (hmac,
hashlib) for the PRF math and the `cryptography` module for the curves,
AEAD/CBC ciphers and signatures. It shares no code with the Go package.

Run from the package directory:  python3 testdata/gen/gen.py
It writes testdata/kdf.json, testdata/sk.json and testdata/auth.json.
"""
import hashlib
import hmac
import json
import os
import struct

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, x25519
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.dirname(HERE)

HASHES = {5: hashlib.sha256, 6: hashlib.sha384, 7: hashlib.sha512}  # IANA PRF ids


def det(label, n):
    """Deterministic pseudo-random bytes (only to make the vectors stable)."""
    out = b""
    i = 0
    while len(out) < n:
        out += hashlib.sha256(label.encode() + bytes([i])).digest()
        i += 1
    return out[:n]


def prf(pid, key, data):
    return hmac.new(key, data, HASHES[pid]).digest()


def prf_plus(pid, key, seed, n):
    out, t, i = b"", b"", 1
    while len(out) < n:
        t = prf(pid, key, t + seed + bytes([i]))
        out += t
        i += 1
    return out[:n]


def hx(b):
    return b.hex()


def ke_pair(group, label):
    """Return (private bytes, IKE KE payload data, peer-agnostic key object)."""
    if group == 31:
        priv = x25519.X25519PrivateKey.from_private_bytes(det(label, 32))
        pub = priv.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return det(label, 32), pub, priv
    curve, size = {19: (ec.SECP256R1(), 32), 20: (ec.SECP384R1(), 48)}[group]
    order = {19: 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
             20: 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973}[group]
    d = int.from_bytes(det(label, size), "big") % (order - 1) + 1
    priv = ec.derive_private_key(d, curve)
    pt = priv.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    assert pt[0] == 4
    return d.to_bytes(size, "big"), pt[1:], priv  # RFC 5903: x | y, no 0x04


def shared(group, priv, peer_ke):
    if group == 31:
        return priv.exchange(x25519.X25519PublicKey.from_public_bytes(peer_ke))
    curve = {19: ec.SECP256R1(), 20: ec.SECP384R1()}[group]
    pub = ec.EllipticCurvePublicKey.from_encoded_point(curve, b"\x04" + peer_ke)
    return priv.exchange(ec.ECDH(), pub)  # x coordinate only (RFC 5903 7)


def kdf_vectors():
    vecs = {"prf_plus": [], "ike": [], "child": []}
    for pid in (5, 6, 7):
        for n in (1, 32, 100, 333):
            key, seed = det("pk%d%d" % (pid, n), 37), det("ps%d%d" % (pid, n), 61)
            vecs["prf_plus"].append({"prf": pid, "key": hx(key), "seed": hx(seed), "n": n,
                                     "out": hx(prf_plus(pid, key, seed, n))})
    # (prf id, dh group, integ key len, enc key len incl. salt)
    suites = [(5, 31, 0, 20), (6, 20, 0, 36), (7, 19, 64, 32), (5, 19, 32, 16)]
    for pid, group, ilen, elen in suites:
        lab = "ike-%d-%d-%d" % (pid, group, ilen)
        ni, nr = det(lab + "ni", 32), det(lab + "nr", 48)
        spii, spir = det(lab + "spii", 8), det(lab + "spir", 8)
        priv_i, ke_i, ki = ke_pair(group, lab + "i")
        priv_r, ke_r, kr = ke_pair(group, lab + "r")
        gir = shared(group, ki, ke_r)
        assert gir == shared(group, kr, ke_i)
        skeyseed = prf(pid, ni + nr, gir)
        plen = HASHES[pid]().digest_size
        km = prf_plus(pid, skeyseed, ni + nr + spii + spir, 3 * plen + 2 * ilen + 2 * elen)
        keys, off = {}, 0
        for name, l in (("d", plen), ("ai", ilen), ("ar", ilen), ("ei", elen), ("er", elen), ("pi", plen), ("pr", plen)):
            keys[name] = hx(km[off:off + l])
            off += l
        # rekey of this IKE SA (RFC 7296 2.18) with a fresh exchange in the same group
        rni, rnr = det(lab + "rni", 32), det(lab + "rnr", 32)
        _, rke_i, rki = ke_pair(group, lab + "ri")
        _, rke_r, _ = ke_pair(group, lab + "rr")
        rgir = shared(group, rki, rke_r)
        rekey_seed = prf(pid, bytes.fromhex(keys["d"]), rgir + rni + rnr)
        # PSK AUTH (2.15) over a fake IKE_SA_INIT message
        msg1, idi = det(lab + "msg1", 300), bytes([2, 0, 0, 0]) + b"site1.example.net"
        psk = b"havpn-test-psk-0123456789"
        octets = msg1 + nr + prf(pid, bytes.fromhex(keys["pi"]), idi)
        auth = prf(pid, prf(pid, psk, b"Key Pad for IKEv2"), octets)
        vecs["ike"].append({
            "prf": pid, "group": group, "integ_len": ilen, "enc_len": elen,
            "ni": hx(ni), "nr": hx(nr), "spii": hx(spii), "spir": hx(spir),
            "priv_i": hx(priv_i), "priv_r": hx(priv_r), "ke_i": hx(ke_i), "ke_r": hx(ke_r),
            "gir": hx(gir), "skeyseed": hx(skeyseed), "keys": keys,
            "rekey": {"ni": hx(rni), "nr": hx(rnr), "gir": hx(rgir), "skeyseed": hx(rekey_seed)},
            "psk_auth": {"msg1": hx(msg1), "id_body": hx(idi), "psk": hx(psk), "octets": hx(octets), "auth": hx(auth)},
        })
    # child SA KEYMAT (2.17), with and without PFS
    for pid, elen, ilen, pfs in ((5, 20, 0, False), (6, 36, 0, True), (7, 32, 32, True), (5, 36, 0, False)):
        lab = "child-%d-%d-%d" % (pid, elen, pfs)
        skd = det(lab + "skd", HASHES[pid]().digest_size)
        ni, nr = det(lab + "ni", 32), det(lab + "nr", 32)
        gir = det(lab + "gir", 32) if pfs else b""
        km = prf_plus(pid, skd, gir + ni + nr, 2 * (elen + ilen))
        vecs["child"].append({
            "prf": pid, "enc_len": elen, "integ_len": ilen, "skd": hx(skd), "ni": hx(ni), "nr": hx(nr), "gir": hx(gir),
            "enc_i": hx(km[:elen]), "integ_i": hx(km[elen:elen + ilen]),
            "enc_r": hx(km[elen + ilen:2 * elen + ilen]), "integ_r": hx(km[2 * elen + ilen:]),
        })
    return vecs


def sk_vectors():
    vecs = []
    inner = det("inner", 77)
    # AEAD: IV | E(inner | pad length 0) | tag, AAD = header through SK header (RFC 5282 5.1)
    for encr, klen, cls in ((20, 16, AESGCM), (20, 32, AESGCM), (28, 32, ChaCha20Poly1305)):
        key, salt, iv = det("skk%d%d" % (encr, klen), klen), det("sks%d%d" % (encr, klen), 4), det("ski%d" % klen, 8)
        prefix = det("prefix", 32)
        ct = cls(key).encrypt(salt + iv, inner + b"\x00", prefix)
        vecs.append({"encr": encr, "enc_key": hx(key + salt), "integ": 0, "integ_key": "",
                     "prefix": hx(prefix), "inner": hx(inner), "data": hx(iv + ct)})
    # AES-CBC + HMAC-SHA2 (RFC 7296 3.14, RFC 4868): pad to 16, ICV over prefix|IV|ct
    for klen, integ, hf, icv in ((16, 12, hashlib.sha256, 16), (32, 14, hashlib.sha512, 32), (32, 13, hashlib.sha384, 24)):
        key, ikey, iv = det("cbck%d" % klen, klen), det("cbci%d" % integ, hf().digest_size), det("cbciv", 16)
        prefix = det("prefix", 32)
        padlen = (16 - (len(inner) + 1) % 16) % 16
        pt = inner + bytes(padlen) + bytes([padlen])
        enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
        ct = enc.update(pt) + enc.finalize()
        mac = hmac.new(ikey, prefix + iv + ct, hf).digest()[:icv]
        vecs.append({"encr": 12, "enc_key": hx(key), "integ": integ, "integ_key": hx(ikey),
                     "prefix": hx(prefix), "inner": hx(inner), "data": hx(iv + ct + mac)})
    return vecs


# RFC 7427 Appendix A AlgorithmIdentifier encodings
ALG = {
    "sha256WithRSA": "300d06092a864886f70d01010b0500",
    "ecdsa-sha256": "300a06082a8648ce3d040302",
    "ecdsa-sha384": "300a06082a8648ce3d040303",
    "ed25519": "300506032b6570",
    "rsassa-pss-sha256": "3041" "06092a864886f70d01010a" "3034" "a00f300d06096086480165030402010500"
                         "a11c301a06092a864886f70d010108300d06096086480165030402010500" "a203020120",
}


def auth_vectors():
    octets = det("signed-octets", 400)
    vecs = []

    def spki(k):
        return hx(k.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))

    def add(name, key, alg, sig):
        a = bytes.fromhex(ALG[alg])
        vecs.append({"name": name, "alg": alg, "alg_id": ALG[alg], "spki": spki(key), "octets": hx(octets),
                     "auth": hx(bytes([len(a)]) + a + sig)})

    k = ed25519.Ed25519PrivateKey.generate()
    add("ed25519", k, "ed25519", k.sign(octets))
    k = ec.generate_private_key(ec.SECP256R1())
    add("ecdsa-p256", k, "ecdsa-sha256", k.sign(octets, ec.ECDSA(hashes.SHA256())))
    k = ec.generate_private_key(ec.SECP384R1())
    add("ecdsa-p384", k, "ecdsa-sha384", k.sign(octets, ec.ECDSA(hashes.SHA384())))
    k = rsa.generate_private_key(65537, 2048)
    add("rsa-pkcs1", k, "sha256WithRSA", k.sign(octets, padding.PKCS1v15(), hashes.SHA256()))
    add("rsa-pss", k, "rsassa-pss-sha256",
        k.sign(octets, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256()))
    return vecs


def main():
    for name, v in (("kdf.json", kdf_vectors()), ("sk.json", sk_vectors()), ("auth.json", auth_vectors())):
        with open(os.path.join(OUT, name), "w") as f:
            json.dump(v, f, indent=1, sort_keys=True)
            f.write("\n")


if __name__ == "__main__":
    main()
