/* The multi-index search's inner loop in C: bucket probes, candidate gather, XOR + popcount.
 *
 * Same answers as mih.MultiIndexHash.candidates followed by _scan.verify (the numpy path, which
 * stays as the fallback and the oracle of the tests): for each query, every bucket within each
 * chunk's threshold of the query's chunk value is looked up, its rows (a run of `order`) are
 * compared with the query by their full codes, and those within the radius are kept. In numpy
 * each of those steps is a pass over arrays allocated per call; here a query is three loops, and
 * the GIL is released for all of it (the server searches from several threads).
 *
 * A row near the query in several chunks is proposed by each of them. It is kept only from the
 * first chunk whose value is within that chunk's threshold of the query's: the chunk that
 * proposes it first, since a row sits in the bucket of its own chunk value. So the hits of rows
 * whose table keys match their codes are unique without a set or a sort. (A row whose code
 * changed after the tables were built sits under stale keys and may come out zero times or
 * several: the caller searches such rows by brute force and removes repeats.)
 *
 * Arrays come as buffers; typed reads go through memcpy so that arrays mapped from a saved
 * file at any alignment are read correctly (on x86 the memcpy is one unaligned load).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The search is compiled twice on x86-64 Linux (GCC): with the POPCNT instruction and for the
 * baseline (where __builtin_popcountll is a table walk), and the loader picks one per machine. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define HOT __attribute__((target_clones("popcnt", "default")))
#else
#define HOT
#endif
#if defined(__GNUC__)
#define INLINE static inline __attribute__((always_inline))
#define PREFETCH(p) __builtin_prefetch(p)
#else
#define INLINE static inline
#define PREFETCH(p) ((void)0)
#endif

/* Every step of a query is a random read (a bucket's offsets, then its run of `order`, then each
 * candidate's code), each a likely cache miss at millions of codes. A plain loop waits for them
 * one chain at a time. So a query runs in three passes over flat arrays, each prefetching a fixed
 * distance ahead of what it reads: bucket offsets PROBE_AHEAD probes ahead, runs of `order`
 * RUN_AHEAD runs ahead, candidates' codes CAND_AHEAD candidates ahead of their verification.
 * The probes' pass has no branch on what it reads (an empty bucket is written, then overwritten),
 * and the checks of the tables are or-ed and tested once a pass, so mispredictions no longer
 * stall the loop between prefetches as they did in one fused pass. On a Xeon with AVX-512 and a large L3 (6 December 2026,
 * the server's own mapped snapshot, CPU time, alternated in one process) this took 34-38 us a
 * query at 1M codes in batches of 100 where the former single pass with a ring of 16 candidates
 * took 46-54, 137-158 against 174-193 at 10M, and 37-43 against 52-56 for single queries at 1M;
 * distances of 64/32/64 beat 32/16/32 and 16/8/16 there (BENCHMARKS.md, "API"). */
#define PROBE_AHEAD 64
#define RUN_AHEAD 32
#define CAND_AHEAD 64

INLINE uint32_t load_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

INLINE uint16_t load_u16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

INLINE uint64_t load_u64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* Bits [start, start + width) of a code, bit 0 the most significant of byte 0: what
 * _bits.bit_field and MultiIndexHash.query_keys compute. At most 5 bytes for width <= 32. */
INLINE uint32_t field(const uint8_t *code, int start, int width) {
    const int first = start >> 3, last = (start + width - 1) >> 3;
    uint64_t acc = 0;
    for (int b = first; b <= last; b++) acc = (acc << 8) | code[b];
    acc >>= (last + 1) * 8 - (start + width);
    return (uint32_t)(acc & ((1ull << width) - 1));
}

INLINE int distance(const uint8_t *a, const uint8_t *b, Py_ssize_t nbytes) {
    int d = 0;
    Py_ssize_t i = 0;
    for (; i + 8 <= nbytes; i += 8) d += __builtin_popcountll(load_u64(a + i) ^ load_u64(b + i));
    for (; i < nbytes; i++) d += __builtin_popcount((unsigned)(a[i] ^ b[i]));
    return d;
}

typedef struct {
    int64_t *qnum, *row;
    int32_t *dist;
    size_t n, cap;
} Hits;

static int hits_push(Hits *h, int64_t q, int64_t row, int32_t d) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 1024;
        int64_t *qn = realloc(h->qnum, cap * sizeof(int64_t));
        if (qn) h->qnum = qn;
        int64_t *rw = realloc(h->row, cap * sizeof(int64_t));
        if (rw) h->row = rw;
        int32_t *ds = realloc(h->dist, cap * sizeof(int32_t));
        if (ds) h->dist = ds;
        if (!qn || !rw || !ds) return -1;
        h->cap = cap;
    }
    h->qnum[h->n] = q;
    h->row[h->n] = row;
    h->dist[h->n] = d;
    h->n++;
    return 0;
}

typedef struct {
    const uint8_t *codes; /* (nrows, code_bytes) */
    Py_ssize_t nrows, code_bytes;
    const uint8_t *queries; /* (nq, code_bytes) */
    Py_ssize_t nq;
    const uint8_t *order; /* (chunks, count) uint32 */
    Py_ssize_t count;
    int chunks, width;
    const uint8_t *high; /* uint32: every offset (low_bits 0) or each block's first */
    const uint8_t *low;  /* uint8 or uint16 offsets modulo 2**low_bits, or NULL */
    int low_bits, block_log2;
    const int64_t *probe_chunk; /* chunk of each probe, ascending */
    const uint32_t *masks;      /* flip mask of each probe */
    Py_ssize_t probes;
    const int32_t *thresholds; /* per chunk, -1 when not probed */
    int radius;
} Search;

/* Errors found without the GIL, reported after it is taken back. */
enum { OK = 0, NO_MEMORY = 1, BAD_TABLES = 2 };

INLINE void bucket(const Search *s, int c, uint32_t key, int64_t *start, int64_t *length) {
    const int64_t at = (int64_t)c * (((int64_t)1 << s->width) + 1) + key;
    if (s->low_bits == 0) {
        const int64_t lo = load_u32(s->high + 4 * at);
        *start = lo;
        *length = (int64_t)load_u32(s->high + 4 * (at + 1)) - lo;
        return;
    }
    const int64_t block = (int64_t)c * (((int64_t)1 << (s->width - s->block_log2)) + 1) + (key >> s->block_log2);
    const uint32_t base = load_u32(s->high + 4 * block);
    /* Unsigned arithmetic modulo 2**low_bits, as BucketOffsets.lookup does it. */
    if (s->low_bits == 8) {
        const uint8_t below = s->low[at];
        *length = (uint8_t)(s->low[at + 1] - below);
        *start = (int64_t)base + (uint8_t)(below - (uint8_t)base);
    } else {
        const uint16_t below = load_u16(s->low + 2 * at);
        *length = (uint16_t)(load_u16(s->low + 2 * (at + 1)) - below);
        *start = (int64_t)base + (uint16_t)(below - (uint16_t)base);
    }
}

/* Keep a verified candidate found through chunk c unless an earlier chunk proposes it too. */
INLINE int first_proposer(const Search *s, const uint32_t *qkey, const uint8_t *code, int c) {
    for (int e = 0; e < c; e++) {
        const int t = s->thresholds[e];
        if (t >= 0 && __builtin_popcount(qkey[e] ^ field(code, e * s->width, s->width)) <= t) return 0;
    }
    return 1;
}

INLINE int verify(const Search *s, Py_ssize_t q, const uint8_t *qcode, const uint32_t *qkey, uint32_t row, int c,
                  Hits *hits) {
    const uint8_t *code = s->codes + (Py_ssize_t)row * s->code_bytes;
    const int d = distance(code, qcode, s->code_bytes);
    if (d <= s->radius && first_proposer(s, qkey, code, c) && hits_push(hits, q, row, d) < 0) return NO_MEMORY;
    return OK;
}

INLINE void prefetch_bucket(const Search *s, int c, uint32_t key) {
    const int64_t at = (int64_t)c * (((int64_t)1 << s->width) + 1) + key;
    if (s->low_bits == 0) {
        PREFETCH(s->high + 4 * at);
        return;
    }
    PREFETCH(s->low + (s->low_bits / 8) * at);
    PREFETCH(s->high + 4 * ((int64_t)c * (((int64_t)1 << (s->width - s->block_log2)) + 1) + (key >> s->block_log2)));
}

/* Both ends of a code: a saved FAISS file puts the codes 33 bytes into the map, so every other
 * 32-byte code straddles two cache lines, and prefetching only the first left the second to a
 * miss (1M codes, the server's mapped snapshot: 34-40 us a query against 44-48). */
INLINE void prefetch_code(const Search *s, uint32_t row) {
    const uint8_t *code = s->codes + (Py_ssize_t)row * s->code_bytes;
    PREFETCH(code);
    PREFETCH(code + s->code_bytes - 1);
}

typedef struct {
    uint32_t *qkey;     /* per chunk */
    uint32_t *key;      /* per probe */
    int64_t *run_first; /* per non-empty bucket: its first position in the flattened order */
    int64_t *run_len;
    int32_t *run_chunk;
    uint32_t *rows; /* per candidate: its row, and the chunk whose bucket proposed it */
    int32_t *chunk;
    size_t cap; /* of rows and chunk, grown to a query's candidates */
} Buffers;

HOT static int run_search(const Search *s, Hits *hits, Buffers *b) {
    for (Py_ssize_t q = 0; q < s->nq; q++) {
        const uint8_t *qcode = s->queries + q * s->code_bytes;
        for (int c = 0; c < s->chunks; c++) b->qkey[c] = field(qcode, c * s->width, s->width);
        for (Py_ssize_t j = 0; j < s->probes; j++) b->key[j] = b->qkey[s->probe_chunk[j]] ^ s->masks[j];
        /* Pass 1: the non-empty buckets, as runs of the flattened order array. */
        for (Py_ssize_t j = 0; j < PROBE_AHEAD && j < s->probes; j++) prefetch_bucket(s, (int)s->probe_chunk[j], b->key[j]);
        Py_ssize_t runs = 0;
        int64_t total = 0;
        int bad = 0;
        for (Py_ssize_t j = 0; j < s->probes; j++) {
            if (j + PROBE_AHEAD < s->probes)
                prefetch_bucket(s, (int)s->probe_chunk[j + PROBE_AHEAD], b->key[j + PROBE_AHEAD]);
            const int c = (int)s->probe_chunk[j];
            int64_t start, length;
            bucket(s, c, b->key[j], &start, &length);
            bad |= (length != 0) & ((start < 0) | (length < 0) | (start + length > s->count));
            b->run_first[runs] = (int64_t)c * s->count + start;
            b->run_len[runs] = length;
            b->run_chunk[runs] = (int32_t)c;
            total += length;
            runs += length != 0;
        }
        if (bad) return BAD_TABLES;
        if ((size_t)total > b->cap) {
            const size_t cap = 2 * (size_t)total;
            uint32_t *rows = realloc(b->rows, cap * sizeof(uint32_t));
            if (rows) b->rows = rows;
            int32_t *chunk = realloc(b->chunk, cap * sizeof(int32_t));
            if (chunk) b->chunk = chunk;
            if (!rows || !chunk) return NO_MEMORY;
            b->cap = cap;
        }
        /* Pass 2: the candidates, the rows of those runs. */
        int64_t n = 0;
        for (Py_ssize_t r = 0; r < runs; r++) {
            if (r + RUN_AHEAD < runs) PREFETCH(s->order + 4 * b->run_first[r + RUN_AHEAD]);
            const uint8_t *run = s->order + 4 * b->run_first[r];
            const int32_t c = b->run_chunk[r];
            const int64_t length = b->run_len[r];
            for (int64_t i = 0; i < length; i++) {
                const uint32_t row = load_u32(run + 4 * i);
                bad |= (Py_ssize_t)row >= s->nrows;
                b->rows[n + i] = row;
                b->chunk[n + i] = c;
            }
            n += length;
        }
        if (bad) return BAD_TABLES;
        /* Pass 3: each candidate's full code against the query's. */
        for (int64_t i = 0; i < CAND_AHEAD && i < n; i++) prefetch_code(s, b->rows[i]);
        for (int64_t i = 0; i < n; i++) {
            if (i + CAND_AHEAD < n) prefetch_code(s, b->rows[i + CAND_AHEAD]);
            if (verify(s, q, qcode, b->qkey, b->rows[i], b->chunk[i], hits) != OK) return NO_MEMORY;
        }
    }
    return OK;
}

static int search_all(const Search *s, Hits *hits) {
    const size_t probes = (size_t)(s->probes ? s->probes : 1);
    Buffers b = {
        malloc(sizeof(uint32_t) * (size_t)(s->chunks ? s->chunks : 1)),
        malloc(sizeof(uint32_t) * probes),
        malloc(sizeof(int64_t) * probes),
        malloc(sizeof(int64_t) * probes),
        malloc(sizeof(int32_t) * probes),
        NULL,
        NULL,
        0,
    };
    int rc = NO_MEMORY;
    if (b.qkey && b.key && b.run_first && b.run_len && b.run_chunk) rc = run_search(s, hits, &b);
    free(b.qkey);
    free(b.key);
    free(b.run_first);
    free(b.run_len);
    free(b.run_chunk);
    free(b.rows);
    free(b.chunk);
    return rc;
}

static PyObject *search_impl(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer codes, queries, order, high, low, probe_chunk, masks, thresholds;
    Py_ssize_t code_bytes, count;
    int chunks, width, low_bits, block_log2, radius;
    if (!PyArg_ParseTuple(args, "y*ny*y*niiy*y*iiy*y*y*i", &codes, &code_bytes, &queries, &order, &count, &chunks,
                          &width, &high, &low, &low_bits, &block_log2, &probe_chunk, &masks, &thresholds, &radius))
        return NULL;
    Py_buffer *all[] = {&codes, &queries, &order, &high, &low, &probe_chunk, &masks, &thresholds};
    const char *problem = NULL;
    Search s = {0};
    if (code_bytes < 1 || chunks < 0 || width < 1 || width > 32 || (Py_ssize_t)chunks * width > 8 * code_bytes)
        problem = "chunks do not fit the code width";
    else if (count < 0 || order.len != 4 * (Py_ssize_t)chunks * count)
        problem = "order is not (chunks, count) uint32";
    else if (codes.len % code_bytes || queries.len % code_bytes)
        problem = "codes and queries must be whole rows";
    else if (thresholds.len != 4 * (Py_ssize_t)chunks || probe_chunk.len % 8 || masks.len != probe_chunk.len / 2)
        problem = "thresholds, probe chunks and masks disagree";
    else if (!(low_bits == 0 || low_bits == 8 || low_bits == 16) || block_log2 < 0 || block_log2 > width ||
             (low_bits == 0 && (low.len != 0 || high.len != 4 * (Py_ssize_t)chunks * (((Py_ssize_t)1 << width) + 1))) ||
             (low_bits != 0 &&
              (low.len != (low_bits / 8) * (Py_ssize_t)chunks * (((Py_ssize_t)1 << width) + 1) ||
               high.len != 4 * (Py_ssize_t)chunks * (((Py_ssize_t)1 << (width - block_log2)) + 1))))
        problem = "bucket offsets do not match their layout";
    else {
        s.codes = codes.buf;
        s.nrows = codes.len / code_bytes;
        s.code_bytes = code_bytes;
        s.queries = queries.buf;
        s.nq = queries.len / code_bytes;
        s.order = order.buf;
        s.count = count;
        s.chunks = chunks;
        s.width = width;
        s.high = high.buf;
        s.low = low_bits ? low.buf : NULL;
        s.low_bits = low_bits;
        s.block_log2 = low_bits ? block_log2 : 0;
        s.probe_chunk = probe_chunk.buf;
        s.masks = masks.buf;
        s.probes = probe_chunk.len / 8;
        s.thresholds = thresholds.buf;
        s.radius = radius;
        for (Py_ssize_t j = 0; j < s.probes && !problem; j++) {
            /* Out-of-range masks would read past a chunk's offsets. */
            int64_t c;
            memcpy(&c, (const uint8_t *)probe_chunk.buf + 8 * j, 8);
            uint32_t m;
            memcpy(&m, (const uint8_t *)masks.buf + 4 * j, 4);
            if (c < 0 || c >= chunks || (width < 32 && (m >> width)))
                problem = "probes must name a chunk and flip only its bits";
        }
        if (((uintptr_t)probe_chunk.buf % 8) || ((uintptr_t)masks.buf % 4) || ((uintptr_t)thresholds.buf % 4))
            problem = "probe arrays must be aligned";
    }
    int rc = OK;
    Hits hits = {0};
    if (!problem) {
        Py_BEGIN_ALLOW_THREADS
        rc = search_all(&s, &hits);
        Py_END_ALLOW_THREADS
    }
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) PyBuffer_Release(all[i]);
    PyObject *result = NULL;
    if (problem) {
        PyErr_Format(PyExc_ValueError, "mih search: %s", problem);
    } else if (rc == NO_MEMORY) {
        PyErr_NoMemory();
    } else if (rc == BAD_TABLES) {
        PyErr_SetString(PyExc_ValueError, "mih search: the tables point outside the order array or the codes");
    } else {
        /* y# turns a NULL pointer (no hits, nothing allocated) into None: pass "" instead. */
        result = Py_BuildValue("(y#y#y#)", hits.n ? (const char *)hits.qnum : "", (Py_ssize_t)(hits.n * sizeof(int64_t)),
                               hits.n ? (const char *)hits.row : "", (Py_ssize_t)(hits.n * sizeof(int64_t)),
                               hits.n ? (const char *)hits.dist : "", (Py_ssize_t)(hits.n * sizeof(int32_t)));
    }
    free(hits.qnum);
    free(hits.row);
    free(hits.dist);
    return result;
}

static PyMethodDef methods[] = {
    {"search", search_impl, METH_VARARGS,
     "search(codes, code_bytes, queries, order, count, chunks, width, high, low, low_bits, block_log2, "
     "probe_chunk, masks, thresholds, radius) -> (qnum int64, row int64, distance int32) as bytes"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_mih_kernel", NULL, -1, methods};

PyMODINIT_FUNC PyInit__mih_kernel(void) { return PyModule_Create(&module); }
