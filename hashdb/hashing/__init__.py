"""Local hashing: one small class per signal (PDQ and its core, pHash/dHash, exact digests), media
decoding with limits (`media`, the only decoder), video sampling and the vPDQ rule (`video`),
vPDQ's text format, and the registry naming every signal. Modules here may import `types`,
`errors`, `config` and `bits`; never `store`, `index` or anything above them."""
