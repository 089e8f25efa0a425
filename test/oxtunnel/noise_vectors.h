/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Noise_IK_25519_ChaChaPoly_SHA256 test vectors, transcribed unchanged
 * (hex strings copied verbatim by script from the JSON) from:
 *
 *   github.com/haskell-cryptography/cacophony, vectors/cacophony.txt
 *     (commit 8ee9d41e34a1a596cfa3ab12aa4069ff87dc1247),
 *     entry "vectors"[154] (0-based), whose "protocol_name" is the above
 *   github.com/rweather/noise-c, tests/vector/noise-c-basic.txt
 *     (commit cfe25410979a87391bb9ac8d4d4bef64e9f268c6),
 *     entry "vectors"[418] (0-based), whose "name" is the above
 *
 * These are the only entries in those files with exactly that protocol
 * name; none carries psks or a "fail" flag.  The two use different
 * prologues but the same keys.  Message 0 is initiator -> responder
 * (-> e, es, s, ss), message 1 responder -> initiator (<- e, ee, se), and
 * the rest are transport messages alternating initiator, responder, ...
 * Public keys other than init_remote_static are not in the files; derive
 * them from the private keys.
 */
#ifndef OX_NOISE_VECTORS_H
#define OX_NOISE_VECTORS_H

struct ox_noise_vector_msg {
	const char *payload;	/* lowercase hex */
	const char *ciphertext; /* lowercase hex */
};

struct ox_noise_vector {
	const char *source;		/* file and entry index */
	const char *prologue;		/* hex */
	const char *init_static;	/* private key, hex */
	const char *init_ephemeral;	/* private key, hex */
	const char *init_remote_static; /* responder's public key, hex */
	const char *resp_static;	/* private key, hex */
	const char *resp_ephemeral;	/* private key, hex */
	const char *handshake_hash;	/* hex, "" if the source has none */
	unsigned int n_messages;
	const struct ox_noise_vector_msg *messages;
};

/* cacophony.txt vectors[154] */
static const struct ox_noise_vector_msg ox_nv0_msgs[] = {
	{
		"4c756477696720766f6e204d69736573",
		"ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c7944"
		"718da798efbcd91528520204f904b9bd6c7413dccdc214d951e15253e39987f1"
		"8146e8cd0873654207148333479d4d16c289f0294b29960a72f48e0b7bba2e89"
		"083169825e59642148d492020664ccf7",
	},
	{
		"4d757272617920526f746862617264",
		"95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f144808843"
		"5361e70b2ed446e6c9ec387d1d6b3b840f194e373979d241b203c4acafccf5",
	},
	{
		"462e20412e20486179656b",
		"050e9f3c8fac16b68dbce8f8c4bfbf6617c897f9ada4aa29aa19c8",
	},
	{
		"4361726c204d656e676572",
		"344233a6cabb7141d80f3da2fedc311d9646bbb0f505afe403a667",
	},
	{
		"4a65616e2d426170746973746520536179",
		"62cdeeb172ad7ade7aa7d9e069da5790f12331bfa00177787a1d0810c67dc3b2"
		"b4",
	},
	{
		"457567656e2042f6686d20766f6e2042617765726b",
		"029bead1b40992327044d409d9a1f3ad8f36c3c452775d557e18bbeb2e8dfcea"
		"d32d514024",
	},
};

/* noise-c-basic.txt vectors[418] */
static const struct ox_noise_vector_msg ox_nv1_msgs[] = {
	{
		"4c756477696720766f6e204d69736573",
		"ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c7944"
		"718da798efbcd91528520204f904b9bd6c7413dccdc214d951e15253e39987f1"
		"508bfd10ad143e921328082a3c3b9e50c289f0294b29960a72f48e0b7bba2e89"
		"f20d17ed0e4dcf718749c95a941a620e",
	},
	{
		"4d757272617920526f746862617264",
		"95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f144808843"
		"5361e70b2ed446e6c9ec387d1d6b3b3380e00f0055bd7b310e12947fbab8e7",
	},
	{
		"462e20412e20486179656b",
		"050e9f3c8fac16b68dbce8f8c4bfbf6617c897f9ada4aa29aa19c8",
	},
	{
		"4361726c204d656e676572",
		"344233a6cabb7141d80f3da2fedc311d9646bbb0f505afe403a667",
	},
	{
		"4a65616e2d426170746973746520536179",
		"62cdeeb172ad7ade7aa7d9e069da5790f12331bfa00177787a1d0810c67dc3b2"
		"b4",
	},
	{
		"457567656e2042f6686d20766f6e2042617765726b",
		"029bead1b40992327044d409d9a1f3ad8f36c3c452775d557e18bbeb2e8dfcea"
		"d32d514024",
	},
};

static const struct ox_noise_vector ox_noise_vectors[] = {
	{
		"cacophony.txt #154",
		"4a6f686e2047616c74",
		"e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1",
		"893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a",
		"31e0303fd6418d2f8c0e78b91f22e8caed0fbe48656dcf4767e4834f701b8f62",
		"4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893",
		"bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b",
		"0b0f68fb0c27e03ce9b97565995ed4838cc0581b762ef72b062f6a546419fad7",
		6,
		ox_nv0_msgs,
	},
	{
		"noise-c-basic.txt #418",
		"50726f6c6f677565313233",
		"e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1",
		"893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a",
		"31e0303fd6418d2f8c0e78b91f22e8caed0fbe48656dcf4767e4834f701b8f62",
		"4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893",
		"bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b",
		"3d8748e8f966293aeab5cd9a2e42ad0e8d0ebd83fa78957c4664bc6718613eeb",
		6,
		ox_nv1_msgs,
	},
};

#define OX_NOISE_N_VECTORS (sizeof(ox_noise_vectors) / sizeof(ox_noise_vectors[0]))

#endif /* OX_NOISE_VECTORS_H */
