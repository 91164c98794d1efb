# SPDX-License-Identifier: Apache-2.0
"""A process that forks with the synth provider in use (tests/test_provider_fork.py): AES-256-GCM
through the system's libcrypto with ctypes, 10 operations before fork() and 10 after in each of
parent and child; each prints its provider counters as one JSON line after a role word. Run with
the system Python (its libcrypto is the one OPENSSL_CONF configures)."""

import ctypes
import json
import os

lc = ctypes.CDLL("libcrypto.so.3")
lc.EVP_CIPHER_fetch.restype = ctypes.c_void_p
lc.EVP_CIPHER_fetch.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
lc.EVP_CIPHER_CTX_new.restype = ctypes.c_void_p
lc.EVP_EncryptInit_ex2.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p,
                                   ctypes.c_void_p]
lc.EVP_EncryptUpdate.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_char_p,
                                 ctypes.c_int]
lc.EVP_EncryptFinal_ex.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int)]
lc.EVP_CIPHER_CTX_free.argtypes = [ctypes.c_void_p]
lc.OSSL_PROVIDER_load.restype = ctypes.c_void_p
lc.OSSL_PROVIDER_load.argtypes = [ctypes.c_void_p, ctypes.c_char_p]



class Param(ctypes.Structure):
    _fields_ = [("key", ctypes.c_char_p), ("data_type", ctypes.c_uint), ("data", ctypes.c_void_p),
                ("data_size", ctypes.c_size_t), ("return_size", ctypes.c_size_t)]


lc.OSSL_PROVIDER_get_params.argtypes = [ctypes.c_void_p, ctypes.POINTER(Param)]



def op(cipher: int) -> None:
    ctx = lc.EVP_CIPHER_CTX_new()
    out = ctypes.create_string_buffer(64)
    n = ctypes.c_int()
    assert lc.EVP_EncryptInit_ex2(ctx, cipher, b"k" * 32, b"i" * 12, None) == 1
    assert lc.EVP_EncryptUpdate(ctx, out, ctypes.byref(n), b"p" * 64, 64) == 1
    assert lc.EVP_EncryptFinal_ex(ctx, out, ctypes.byref(n)) == 1
    lc.EVP_CIPHER_CTX_free(ctx)



def counters(prov: int) -> dict[str, int]:
    names = [b"synth-ops", b"synth-fallback-no-device"]
    vals = [ctypes.c_uint64() for _ in names]
    arr = (Param * 3)(*[Param(nm, 2, ctypes.cast(ctypes.byref(v), ctypes.c_void_p), 8, 0)
                        for nm, v in zip(names, vals, strict=True)], Param(None, 0, None, 0, 0))
    assert lc.OSSL_PROVIDER_get_params(prov, arr) == 1
    return {nm.decode(): v.value for nm, v in zip(names, vals, strict=True)}



prov = lc.OSSL_PROVIDER_load(None, b"synth")
cipher = lc.EVP_CIPHER_fetch(None, b"AES-256-GCM", b"provider=synth")
for _ in range(10):
    op(cipher)
print("parent-before", json.dumps(counters(prov)), flush=True)
pid = os.fork()
for _ in range(10):  # both at once
    op(cipher)
if pid == 0:
    print("child", json.dumps(counters(prov)), flush=True)
    os._exit(0)
os.waitpid(pid, 0)  # then the parent's line, after the child's: one line each
print("parent-after", json.dumps(counters(prov)), flush=True)
