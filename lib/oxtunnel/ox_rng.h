/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef OX_RNG_H
#define OX_RNG_H
/**
 * @file
 * Random bytes for what a handshake spends by the thousand: ephemeral keys,
 * cookie nonces, receiver indexes. The OS's generator costs a system call a
 * request (5,000 to 7,000 cycles in a virtual machine that traps them, a
 * handshake's X25519 is about 70,000); this one asks the OS once per thread
 * and then expands that seed with ChaCha20, the way arc4random does.
 *
 * Fast key erasure (Bernstein, "Fast-key-erasure random-number
 * generators", 2017): each refill's first 32 bytes of keystream become the
 * next key and the key before is gone, every byte is wiped as it is handed
 * out, so what a thread's memory shows later reveals nothing it gave
 * before. Fresh OS bytes are mixed into the key every 2 MB of output, and a
 * forked child starts over from the OS.
 *
 * Long-term keys (ox_key_generate) still come straight from the OS.
 *
 * Threading: one generator per thread (thread-local), no locks.
 */
#include <stddef.h>

/**
 * Fill @p out with @p len random bytes. Requests over 256 bytes go to the
 * OS's generator directly. Never fails: libsodium aborts if the OS has no
 * randomness to give, as it does for randombytes_buf().
 */
void ox_random(void *out, size_t len);

#endif /* OX_RNG_H */
