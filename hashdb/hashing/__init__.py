"""Local hashing: one small class per signal (PDQ and its core, pHash/dHash, exact digests), media
decoding with limits (`media`, the only decoder), video sampling and the vPDQ rule (`video`),
vPDQ's text format, the registry naming every signal, and `kernel`, the compiled PDQ and pHash
thumbnail code (`_pdq_kernel.c`, optional: the numpy port gives the same hashes). Modules here may import `types`,
`errors`, `config` and `bits`; never `store`, `index` or anything above them."""
