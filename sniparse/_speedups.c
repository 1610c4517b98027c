/*
 * sniparse._speedups: optional C versions of sniparse's hottest loops and parsers.
 *
 * scan_pcap() and scan_pcapng(), with exactly the contracts of
 * sniparse._fastpath.scan_pcap_py and scan_pcapng_py (read that module's notes first):
 * walk classic pcap records, or pcapng Enhanced Packet Blocks, from an offset of a buffer
 * (bytes or a read-only mmap) and step over every record that is a data or pure-ACK TCP
 * packet of a flow whose direction key is in the flow table's `decided` set, counting it;
 * stop at the first record that needs Python and say where (scan_pcap also hands that
 * record over, built as the framer builds it, when it is simply one to decode).
 *
 * Which frames qualify is sniparse._fastpath.key_at's rule, written again here:
 * Ethernet (up to two 802.1Q / 802.1ad tags), LINUX_SLL2, LINUX_SLL, raw IP (101, 228,
 * 229), carrying IPv4 with IHL 5 that is not a fragment (RFC 791 §3.1) or IPv6 with TCP
 * right after the fixed header (RFC 8200 §3), and a whole TCP header (RFC 9293 §3.1). The
 * direction key is src address + dst address + src port + dst port (sniparse.tcp.flow_key).
 *
 * scan_pcap_batch() and scan_pcapng_batch() do the same walk but hand over many records
 * per call, each decoded by segment_from() when it can be, and also drop (counting them)
 * packets of just-closed connections that the flow table would only count as after_close;
 * why both stay exact is in sniparse.analyze's "Batches" notes.
 *
 * segment() is the other hot spot of a handshake-heavy capture: the inlined common case of
 * sniparse.decode.decode_segment (one TCP segment out of an Ethernet / SLL / SLL2 / raw IP
 * frame), returning the same Segment, or None exactly where the Python code falls through
 * to its general decoder.
 *
 * client_hello_fields() is the per-connection hot spot: the common case of
 * sniparse.tls._parse_ch_message (a well-formed ClientHello with at most one extension of
 * each type, RFC 8446 §4.2, an ASCII host name in the usual single-entry server_name list,
 * RFC 6066 §3, and well-formed decoded extensions), returning every ClientHello field value;
 * None for anything else, and the Python parser decides (raises, or handles the odd case).
 * So it never needs the Python code's error details or edge cases, only its values, and
 * it hands out the very same object for a field whose bytes equal a recently seen one (a
 * bounded cache, compared in full). new_record() builds records (ClientHello, server
 * replies, Handshake) as the dataclass's __init__ would, by installing a ready-made
 * __dict__. server_reaction() is the same arrangement for the server's first record: an
 * alert, or a whole well-formed ServerHello in one handshake record, read as
 * sniparse.tls._server_reaction would; None for anything else.
 *
 * ndjson_row() writes the common (all-ASCII) ndjson line of a handshake, exactly as
 * sniparse.report._ndjson_fast would, or None to leave the row to it.
 *
 * Every read is bounds-checked against the buffer and the record's captured length. The
 * scans allocate only the keys they look up and the timestamps kept in `pending` (a small
 * per-call cache spares both for repeats). Plain CPython C API, no third-party headers;
 * tests/test_fastpath.py checks the scans and the segment decoder against their Python
 * counterparts and the general decoders, tests/test_tls_c.py and tests/test_hello_path.py
 * the ClientHello parser against the Python one, tests/test_record_building.py the records,
 * tests/test_rows_c.py the rows and tests/test_tomb_skip.py the after_close drop.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t rd32(const unsigned char *p, int big) {
    if (big)
        return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
    return ((uint32_t)p[3] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[1] << 8) | p[0];
}

/* Key and flags of the IP packet at f[off:end] (end = captured length of the frame).
 * Returns the key length (12 or 36) and fills key/flags, or 0 when not a simple case. */
static inline int ip_key(const unsigned char *f, Py_ssize_t off, Py_ssize_t end,
                         unsigned char *key, int *flags) {
    if (off + 40 > end)
        return 0;
    unsigned char b0 = f[off];
    if (b0 == 0x45) {
        if (f[off + 9] != 6 || (f[off + 6] & 0x3F) || f[off + 7])
            return 0;
        Py_ssize_t tot = ((Py_ssize_t)f[off + 2] << 8) | f[off + 3];
        Py_ssize_t t = off + 20;
        Py_ssize_t doff = (Py_ssize_t)(f[t + 12] >> 4) << 2;
        if (doff < 20 || tot < 20 + doff || t + doff > end)
            return 0;
        memcpy(key, f + off + 12, 12);
        *flags = f[t + 13];
        return 12;
    }
    if ((b0 >> 4) == 6) {
        if (f[off + 6] != 6)
            return 0;
        Py_ssize_t plen = ((Py_ssize_t)f[off + 4] << 8) | f[off + 5];
        Py_ssize_t t = off + 40;
        if (t + 20 > end)
            return 0;
        Py_ssize_t doff = (Py_ssize_t)(f[t + 12] >> 4) << 2;
        if (doff < 20 || plen < doff || t + doff > end)
            return 0;
        memcpy(key, f + off + 8, 32);
        memcpy(key + 32, f + t, 4);
        *flags = f[t + 13];
        return 36;
    }
    return 0;
}

static inline int frame_key(long lt, const unsigned char *f, Py_ssize_t caplen,
                            unsigned char *key, int *flags) {
    unsigned et;
    switch (lt) {
    case 1:
        if (caplen < 14)
            return 0;
        et = ((unsigned)f[12] << 8) | f[13];
        if (et == 0x0800 || et == 0x86DD)
            return ip_key(f, 14, caplen, key, flags);
        {
            Py_ssize_t q = 14;
            while ((et == 0x8100 || et == 0x88A8) && q <= 18 && caplen >= q + 4) {
                et = ((unsigned)f[q + 2] << 8) | f[q + 3];
                q += 4;
                if (et == 0x0800 || et == 0x86DD)
                    return ip_key(f, q, caplen, key, flags);
            }
        }
        return 0;
    case 276:
        if (caplen < 20)
            return 0;
        et = ((unsigned)f[0] << 8) | f[1];
        if ((et == 0x0800 || et == 0x86DD) && !(f[8] == 3 && f[9] == 0x38))
            return ip_key(f, 20, caplen, key, flags);
        return 0;
    case 113:
        if (caplen < 16)
            return 0;
        et = ((unsigned)f[14] << 8) | f[15];
        if ((et == 0x0800 || et == 0x86DD) && !(f[2] == 3 && f[3] == 0x38))
            return ip_key(f, 16, caplen, key, flags);
        return 0;
    case 101:
    case 228:
    case 229:
        if (caplen < 1)
            return 0;
        if ((lt == 228 && (f[0] >> 4) != 4) || (lt == 229 && (f[0] >> 4) != 6))
            return 0;
        return ip_key(f, 0, caplen, key, flags);
    default:
        return 0;
    }
}

/* Skipped keys are remembered in a small direct-mapped cache for the length of one call:
 * bulk packets of the same few flows follow each other, and a hit costs a hash and a
 * memcmp instead of a bytes object, a set lookup and a dict update. Each entry keeps the
 * largest timestamp seen; entries are written to `pending` when evicted and at the end. */
#define CACHE_SIZE 64

typedef struct {
    PyObject *obj; /* the key as bytes (owned), NULL when the entry is empty */
    long long ts;
    int len;
    unsigned char key[36];
} entry;

static int pending_max(PyObject *pending, PyObject *key, long long ts) {
    PyObject *old = PyDict_GetItemWithError(pending, key); /* borrowed */
    if (old != NULL) {
        long long o = PyLong_AsLongLong(old);
        if (o == -1 && PyErr_Occurred())
            return -1;
        if (ts <= o)
            return 0;
    } else if (PyErr_Occurred()) {
        return -1;
    }
    PyObject *tso = PyLong_FromLongLong(ts);
    if (tso == NULL)
        return -1;
    int r = PyDict_SetItem(pending, key, tso);
    Py_DECREF(tso);
    return r;
}

static inline unsigned key_hash(const unsigned char *k, int len) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (int i = 0; i < len; i++)
        h = (h ^ k[i]) * 16777619u;
    return (unsigned)(h ^ (h >> 16)) & (CACHE_SIZE - 1);
}

/* The direction key as a bytes object from the segment decoder's key cache (below). */
static PyObject *key_object(const unsigned char *key, int klen);

/* Is the frame with this key (known to carry no SYN/FIN/RST) in `decided`? 1: yes, and
 * its time is recorded in the cache; 0: no; -1: a Python error is set. The key object
 * comes from the decoder's cache: a key that is not in `decided` is handed over next and
 * the decoder finds it there, its hash already computed (callgrind on the handshake
 * benchmark's first 40 MB: 12 M instructions fewer than a new bytes object each time). */
static int skip_key(entry *cache, const unsigned char *key, int klen, long long ts,
                    PyObject *decided, PyObject *pending) {
    entry *e = &cache[key_hash(key, klen)];
    if (e->obj != NULL && e->len == klen && memcmp(e->key, key, (size_t)klen) == 0) {
        if (ts > e->ts)
            e->ts = ts;
        return 1;
    }
    PyObject *kobj = key_object(key, klen);
    if (kobj == NULL)
        return -1;
    int in = PySet_Contains(decided, kobj);
    if (in <= 0) {
        Py_DECREF(kobj);
        return in;
    }
    if (e->obj != NULL) {
        int r = pending_max(pending, e->obj, e->ts);
        Py_CLEAR(e->obj);
        if (r < 0) {
            Py_DECREF(kobj);
            return -1;
        }
    }
    e->obj = kobj; /* the reference moves into the cache */
    e->ts = ts;
    e->len = klen;
    memcpy(e->key, key, (size_t)klen);
    return 1;
}

/* Write the cached times to `pending` and empty the cache; returns -1 on error. */
static int flush_cache(entry *cache, PyObject *pending, int failed) {
    for (int i = 0; i < CACHE_SIZE; i++) {
        if (cache[i].obj != NULL) {
            if (!failed && pending_max(pending, cache[i].obj, cache[i].ts) < 0)
                failed = 1;
            Py_CLEAR(cache[i].obj);
        }
    }
    return failed ? -1 : 0;
}

/* stop_ts may be any Python int (a damaged pcapng time plus a second): clamp it. */
static long long as_stop_ts(PyObject *o) {
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow > 0)
        return LLONG_MAX;
    if (overflow < 0)
        return LLONG_MIN;
    return v;
}

/* (frame0 + delta, ts, lt, data, origlen, iface) built as `rtype` (Record or tuple). */
/* A tuple of ``n`` new references (stolen); NULL (and all of them released) when one of
 * them or the tuple could not be made. Cheaper than Py_BuildValue on the per-packet path:
 * no format string to interpret. */
static PyObject *steal_tuple(Py_ssize_t n, PyObject **items) {
    PyObject *t = NULL;
    for (Py_ssize_t i = 0; i < n; i++)
        if (items[i] == NULL)
            goto fail;
    t = PyTuple_New(n);
    if (t == NULL)
        goto fail;
    for (Py_ssize_t i = 0; i < n; i++)
        PyTuple_SET_ITEM(t, i, items[i]);
    return t;
fail:
    for (Py_ssize_t i = 0; i < n; i++)
        Py_XDECREF(items[i]);
    return NULL;
}

static PyObject *record_of(PyTypeObject *rtype, PyObject **items);

static PyObject *make_record(PyTypeObject *rtype, PyObject *frame0, long long delta,
                             long long ts, long lt, const unsigned char *data, uint32_t caplen,
                             uint32_t origlen, PyObject *iface) {
    long long f0 = PyLong_AsLongLong(frame0);
    if (f0 == -1 && PyErr_Occurred())
        return NULL;
    PyObject *items[6] = {
        PyLong_FromLongLong(f0 + delta),
        PyLong_FromLongLong(ts),
        PyLong_FromLong(lt),
        PyBytes_FromStringAndSize((const char *)data, (Py_ssize_t)caplen),
        PyLong_FromUnsignedLong(origlen),
        Py_NewRef(iface),
    };
    return record_of(rtype, items);
}

/* A record of `rtype` (Record or tuple) from its six fields (new references, stolen; NULL
 * when one of them or the record could not be made, all released). */
static PyObject *record_of(PyTypeObject *rtype, PyObject **items) {
    PyObject *rec = rtype == &PyTuple_Type ? PyTuple_New(6) : rtype->tp_alloc(rtype, 6);
    int bad = rec == NULL;
    for (int i = 0; i < 6; i++) {
        if (items[i] == NULL)
            bad = 1;
        if (rec != NULL)
            PyTuple_SET_ITEM(rec, i, items[i]);
        else
            Py_XDECREF(items[i]);
    }
    if (bad) {
        Py_XDECREF(rec);
        return NULL;
    }
    return rec;
}

PyDoc_STRVAR(scan_pcap_doc,
"scan_pcap(buf, pos, big_endian, rec_hdr, ts_mult, limit, linktype, check_caplen,\n"
"          decided, pending, stop_ts, frame, iface, record_type)\n"
"    -> (pos, skipped, bytes, cut, last_sec, last_ts, max_ts, why, record)\n\n"
"Skip classic pcap records of buf from pos while they are bulk packets of decided\n"
"flows; the C implementation of sniparse._fastpath.scan_pcap_py (same arguments,\n"
"same result).");

static PyObject *scan_pcap(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 14) {
        PyErr_SetString(PyExc_TypeError, "scan_pcap() takes exactly 14 arguments");
        return NULL;
    }
    PyObject *frame0 = args[11], *iface = args[12];
    if (!PyType_Check(args[13]) || !PyType_IsSubtype((PyTypeObject *)args[13], &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "scan_pcap(): record_type must be a tuple type");
        return NULL;
    }
    PyTypeObject *rtype = (PyTypeObject *)args[13];
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    if (pos == -1 && PyErr_Occurred())
        return NULL;
    int big = PyObject_IsTrue(args[2]);
    Py_ssize_t rh = PyLong_AsSsize_t(args[3]);
    long long mult = PyLong_AsLongLong(args[4]);
    long long limit = PyLong_AsLongLong(args[5]);
    long lt = PyLong_AsLong(args[6]);
    int check_caplen = PyObject_IsTrue(args[7]);
    long long stop_ts = as_stop_ts(args[10]);
    if (PyErr_Occurred() || big < 0 || check_caplen < 0)
        return NULL;
    PyObject *decided = args[8];
    PyObject *pending = args[9];
    if (!PyAnySet_Check(decided) || !PyDict_Check(pending)) {
        PyErr_SetString(PyExc_TypeError, "scan_pcap(): decided must be a set, pending a dict");
        return NULL;
    }
    if (rh < 16 || pos < 0) {
        PyErr_SetString(PyExc_ValueError, "scan_pcap(): bad record header size or offset");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const unsigned char *b = (const unsigned char *)view.buf;
    Py_ssize_t n = view.len;
    long long k = 0, nbytes = 0, cut = 0, last_sec = -1, last_ts = -1, max_ts = -1;
    int why = 1; /* STOP_OTHER */
    PyObject *record = NULL;
    int failed = 0;
    unsigned char key[36];
    int flags = 0;
    entry cache[CACHE_SIZE];
    for (int i = 0; i < CACHE_SIZE; i++)
        cache[i].obj = NULL;

    while (pos + rh <= n) {
        const unsigned char *h = b + pos;
        uint32_t sec = rd32(h, big), frac = rd32(h + 4, big);
        uint32_t caplen = rd32(h + 8, big), origlen = rd32(h + 12, big);
        Py_ssize_t p = pos + rh;
        if ((long long)caplen > limit || p + (Py_ssize_t)caplen > n ||
            (check_caplen && caplen > origlen))
            break;
        int klen = frame_key(lt, b + p, (Py_ssize_t)caplen, key, &flags);
        long long ts = (long long)sec * 1000000000LL + (long long)frac * mult;
        int sk = 0;
        if (klen != 0 && !(flags & 0x07)) {
            sk = skip_key(cache, key, klen, ts, decided, pending);
            if (sk < 0) {
                failed = 1;
                break;
            }
        }
        if (sk == 0) {
            /* This record needs Python: hand it over as the framer would build it. */
            record = make_record(rtype, frame0, k + 1, ts, lt, b + p, caplen, origlen, iface);
            if (record == NULL) {
                failed = 1;
                break;
            }
            why = 3; /* STOP_RECORD */
            nbytes += caplen;
            if (caplen < origlen)
                cut++;
            if (ts > max_ts)
                max_ts = ts;
            last_sec = sec;
            pos = p + (Py_ssize_t)caplen;
            break;
        }
        if (ts > max_ts)
            max_ts = ts;
        k++;
        nbytes += caplen;
        if (caplen < origlen)
            cut++;
        last_sec = sec;
        last_ts = ts;
        pos = p + (Py_ssize_t)caplen;
        if (ts >= stop_ts) {
            why = 2; /* STOP_EXPIRE */
            break;
        }
    }
    PyBuffer_Release(&view);
    if (flush_cache(cache, pending, failed) < 0) {
        Py_XDECREF(record);
        return NULL;
    }
    PyObject *items[9] = {
        PyLong_FromSsize_t(pos), PyLong_FromLongLong(k), PyLong_FromLongLong(nbytes),
        PyLong_FromLongLong(cut), PyLong_FromLongLong(last_sec), PyLong_FromLongLong(last_ts),
        PyLong_FromLongLong(max_ts), PyLong_FromLong(why),
        record != NULL ? record : Py_NewRef(Py_None)};
    return steal_tuple(9, items);
}

/* One interface of the current pcapng section, from the framer's table. */
typedef struct {
    long lt;
    long long mul, div, off;
} iface;

PyDoc_STRVAR(scan_pcapng_doc,
"scan_pcapng(buf, pos, big_endian, table, max_block, decided, pending, stop_ts, counts)\n"
"    -> (pos, skipped, bytes, cut, last_ts, max_ts, why)\n\n"
"The pcapng counterpart of scan_pcap: skip Enhanced Packet Blocks of buf from pos while\n"
"they are bulk packets of decided flows. table: the framer's interface table of the\n"
"section, (global index, linktype, snaplen, mul, div, offset_ns) per interface id;\n"
"counts: a list as long as table, to which the skipped packets per interface are added.\n"
"Stops at any block that is not a sound EPB of a known interface (why 1), at a packet\n"
"that needs Python (why 0), or after a skipped packet at or past stop_ts (why 2).");

static PyObject *scan_pcapng(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 9) {
        PyErr_SetString(PyExc_TypeError, "scan_pcapng() takes exactly 9 arguments");
        return NULL;
    }
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    int big = PyObject_IsTrue(args[2]);
    PyObject *table = args[3];
    long long max_block = PyLong_AsLongLong(args[4]);
    PyObject *decided = args[5];
    PyObject *pending = args[6];
    long long stop_ts = as_stop_ts(args[7]);
    PyObject *counts = args[8];
    if (PyErr_Occurred() || big < 0)
        return NULL;
    if (!PyList_Check(table) || !PyList_Check(counts) || !PyAnySet_Check(decided) ||
        !PyDict_Check(pending) || PyList_GET_SIZE(counts) != PyList_GET_SIZE(table) || pos < 0) {
        PyErr_SetString(PyExc_TypeError, "scan_pcapng(): bad arguments");
        return NULL;
    }
    Py_ssize_t ntab = PyList_GET_SIZE(table);
    long long k = 0, nbytes = 0, cut = 0, last_ts = -1, max_ts = -1;
    int why = 1; /* STOP_OTHER */
    iface *tab = PyMem_Calloc((size_t)(ntab ? ntab : 1), sizeof(iface));
    long long *cnt = PyMem_Calloc((size_t)(ntab ? ntab : 1), sizeof(long long));
    if (tab == NULL || cnt == NULL) {
        PyMem_Free(tab);
        PyMem_Free(cnt);
        return PyErr_NoMemory();
    }
    int usable = 1;
    for (Py_ssize_t i = 0; i < ntab && usable; i++) {
        PyObject *t = PyList_GET_ITEM(table, i);
        if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 6) {
            usable = 0;
            break;
        }
        tab[i].lt = PyLong_AsLong(PyTuple_GET_ITEM(t, 1));
        tab[i].mul = PyLong_AsLongLong(PyTuple_GET_ITEM(t, 3));
        tab[i].div = PyLong_AsLongLong(PyTuple_GET_ITEM(t, 4));
        tab[i].off = PyLong_AsLongLong(PyTuple_GET_ITEM(t, 5));
        if (PyErr_Occurred()) {
            /* Values beyond 64 bits (a strange if_tsresol / if_tsoffset): leave this
             * section to Python. */
            PyErr_Clear();
            usable = 0;
        } else if (tab[i].mul < 0 || tab[i].div <= 0) {
            usable = 0;
        }
    }
#ifndef __SIZEOF_INT128__
    usable = 0; /* exact timestamps need 128-bit products; Python does it instead */
#endif
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        PyMem_Free(tab);
        PyMem_Free(cnt);
        return NULL;
    }
    const unsigned char *b = (const unsigned char *)view.buf;
    Py_ssize_t n = view.len;
    int failed = 0;
    unsigned char key[36];
    int flags = 0;
    entry cache[CACHE_SIZE];
    for (int i = 0; i < CACHE_SIZE; i++)
        cache[i].obj = NULL;

    while (usable && pos + 28 <= n) {
        const unsigned char *h = b + pos;
        uint32_t btype = rd32(h, big), blen = rd32(h + 4, big), ifid = rd32(h + 8, big);
        uint32_t tsh = rd32(h + 12, big), tsl = rd32(h + 16, big);
        uint32_t caplen = rd32(h + 20, big), origlen = rd32(h + 24, big);
        long long end = (long long)pos + blen;
        if (btype != 6 || ifid >= (uint32_t)ntab || end > n || (blen & 3) ||
            !(32 + (long long)caplen <= (long long)blen && (long long)blen <= max_block) ||
            rd32(b + end - 4, big) != blen)
            break;
#ifdef __SIZEOF_INT128__
        /* The framer's ((tsh << 32) | tsl) * mul // div + off, exactly (all >= 0 but off). */
        __int128 t = ((__int128)(((uint64_t)tsh << 32) | tsl) * tab[ifid].mul) / tab[ifid].div +
                     tab[ifid].off;
        if (t > (__int128)INT64_MAX || t < (__int128)INT64_MIN)
            break;
        long long ts = (long long)t;
#else
        long long ts = 0;
#endif
        int klen = frame_key(tab[ifid].lt, h + 28, (Py_ssize_t)caplen, key, &flags);
        if (klen == 0 || (flags & 0x07)) {
            why = 0;
            break;
        }
        int sk = skip_key(cache, key, klen, ts, decided, pending);
        if (sk <= 0) {
            if (sk < 0)
                failed = 1;
            else
                why = 0;
            break;
        }
        if (ts > max_ts)
            max_ts = ts;
        k++;
        cnt[ifid]++;
        nbytes += caplen;
        if (caplen < origlen)
            cut++;
        last_ts = ts;
        pos = (Py_ssize_t)end;
        if (ts >= stop_ts) {
            why = 2;
            break;
        }
    }
    PyBuffer_Release(&view);
    if (flush_cache(cache, pending, failed) < 0)
        failed = 1;
    for (Py_ssize_t i = 0; i < ntab && !failed; i++) {
        if (cnt[i] == 0)
            continue;
        PyObject *old = PyList_GET_ITEM(counts, i);
        long long o = PyLong_AsLongLong(old);
        PyObject *nw = (o == -1 && PyErr_Occurred()) ? NULL : PyLong_FromLongLong(o + cnt[i]);
        if (nw == NULL) {
            failed = 1;
            break;
        }
        PyList_SetItem(counts, i, nw); /* steals nw, releases old */
    }
    PyMem_Free(tab);
    PyMem_Free(cnt);
    if (failed)
        return NULL;
    PyObject *items[7] = {
        PyLong_FromSsize_t(pos), PyLong_FromLongLong(k), PyLong_FromLongLong(nbytes),
        PyLong_FromLongLong(cut), PyLong_FromLongLong(last_ts), PyLong_FromLongLong(max_ts),
        PyLong_FromLong(why)};
    return steal_tuple(7, items);
}

/* ---- decode_segment's common case ---------------------------------------------------- */

static inline uint32_t be32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static PyObject *slice(const unsigned char *d, Py_ssize_t a, Py_ssize_t b) {
    return PyBytes_FromStringAndSize((const char *)d + a, b > a ? b - a : 0);
}

/* The shared int objects of 16-bit values (defined with the ClientHello parser below):
 * ports, windows, payload lengths, flags and the IP version, which recur all the time. */
static inline PyObject *u16_obj(unsigned v);

/* The same few thousand addresses, and the same direction key for every packet of a flow
 * direction, recur all through a capture: segment_from hands out bytes objects for them
 * from two small direct-mapped caches instead of allocating (and later freeing) new ones
 * per segment. A bytes object is immutable, so sharing one is safe; a shared key also
 * keeps its hash cached for the flow table's dict lookups. Each slot holds a reference to
 * the last object made for its hash; a miss replaces it. Memory stays bounded by the slot
 * counts (a few hundred kB at most). */
#define ADDR_BITS 10 /* 1024 slots of 4- or 16-byte addresses */
#define KEY_BITS 12  /* 4096 slots of 12- or 36-byte direction keys */

static PyObject *addr_cache[1 << ADDR_BITS];
static PyObject *key_cache[1 << KEY_BITS];

/* A hash of p[0:len], len a multiple of 4; its top bits pick a slot (Fibonacci hashing). */
static inline uint32_t words_hash(const unsigned char *p, Py_ssize_t len) {
    uint32_t h = (uint32_t)len;
    for (Py_ssize_t i = 0; i < len; i += 4) {
        uint32_t w;
        memcpy(&w, p + i, 4);
        h = (((h << 5) | (h >> 27)) ^ w) * 0x9E3779B1u;
    }
    return h;
}

/* bytes(p[0:len]) (len a multiple of 4), from `cache` of 2**bits slots when it holds it;
 * a new reference, or NULL on a memory error. */
static PyObject *cached_bytes(PyObject **cache, unsigned bits, const unsigned char *p,
                              Py_ssize_t len) {
    PyObject **slot = &cache[words_hash(p, len) >> (32 - bits)];
    PyObject *o = *slot;
    if (o != NULL && PyBytes_GET_SIZE(o) == len &&
        memcmp(PyBytes_AS_STRING(o), p, (size_t)len) == 0)
        return Py_NewRef(o);
    o = PyBytes_FromStringAndSize((const char *)p, len);
    if (o != NULL)
        Py_XSETREF(*slot, Py_NewRef(o));
    return o;
}

static PyObject *key_object(const unsigned char *key, int klen) {
    return cached_bytes(key_cache, KEY_BITS, key, klen);
}

PyDoc_STRVAR(segment_doc,
"segment(segment_type, record) -> Segment | None\n\n"
"The inlined common case of sniparse.decode.decode_segment, in C: Ethernet (untagged or\n"
"one 802.1Q tag), LINUX_SLL2, LINUX_SLL, raw IP (101, 228) carrying IPv4 without options\n"
"or fragmentation, or IPv6 with TCP right after the fixed header, and a whole TCP header.\n"
"record is (frame, ts_ns, linktype, data, origlen, iface). None means: not that case,\n"
"use the general decoder (exactly where the Python inline code falls through).");

static PyObject *segment_impl(PyObject *const *args, Py_ssize_t nargs, int with_key);

static PyObject *segment(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    return segment_impl(args, nargs, 0);
}

PyDoc_STRVAR(segment_key_doc,
"segment_key(segment_type, record) -> (Segment, key) | None\n\n"
"segment(), plus the segment's direction key (sniparse.tcp.flow_key of it).");

static PyObject *segment_key(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    return segment_impl(args, nargs, 1);
}

typedef struct {
    int ver;
    long vid; /* the 802.1Q VLAN id, or -1 */
    /* TCP header, its end, the end of the IP payload, the addresses: offsets in the frame */
    Py_ssize_t t, hend, wend, src_a, src_b, dst_a, dst_b;
} seg_layout;

/* Does segment_from take the frame d[0:n]? 1 with its layout in *L, else 0. */
static inline int segment_layout(long lt, const unsigned char *d, Py_ssize_t n,
                                 long long origlen, seg_layout *L) {
    Py_ssize_t o = -1, o6 = -1;
    long vid = -1;
    if (lt == 1) {
        if (n >= 54 && d[13] == 0x00 && d[12] == 0x08) {
            o = 14;
        } else if (n >= 74 && d[12] == 0x86 && d[13] == 0xDD) {
            o6 = 14;
        } else if (n >= 58 && d[12] == 0x81 && d[13] == 0x00) {
            unsigned et = ((unsigned)d[16] << 8) | d[17];
            if (et == 0x0800) {
                o = 18;
                vid = ((long)(d[14] & 0x0F) << 8) | d[15];
            } else if (et == 0x86DD) {
                o6 = 18;
                vid = ((long)(d[14] & 0x0F) << 8) | d[15];
            }
        }
    } else if (lt == 276) {
        /* ARPHRD_NETLINK (0x0338) frames are never IP, whatever their protocol says. */
        if (n >= 60 && !(d[8] == 3 && d[9] == 0x38)) {
            if (d[0] == 0x08 && d[1] == 0x00)
                o = 20;
            else if (d[0] == 0x86 && d[1] == 0xDD)
                o6 = 20;
        }
    } else if (lt == 113) {
        if (n >= 56 && !(d[2] == 3 && d[3] == 0x38)) {
            if (d[14] == 0x08 && d[15] == 0x00)
                o = 16;
            else if (d[14] == 0x86 && d[15] == 0xDD)
                o6 = 16;
        }
    } else if (lt == 101 || lt == 228) {
        o = 0;
    }
    Py_ssize_t t, wend, hend;
    if (o6 >= 0 && n >= o6 + 60 && (d[o6] >> 4) == 6 && d[o6 + 6] == 6) {
        t = o6 + 40;
        Py_ssize_t plen = ((Py_ssize_t)d[o6 + 4] << 8) | d[o6 + 5];
        wend = t + plen;
        hend = t + ((Py_ssize_t)(d[t + 12] >> 4) << 2);
        if (!(plen && t + 20 <= hend && hend <= wend && hend <= n &&
              (wend <= n || wend <= origlen)))
            return 0;
        L->ver = 6;
        L->src_a = o6 + 8, L->src_b = o6 + 24, L->dst_a = o6 + 24, L->dst_b = t;
    } else if (o >= 0 && n >= o + 40 && d[o] == 0x45 && d[o + 9] == 6 &&
               !((d[o + 6] & 0x3F) || d[o + 7])) {
        t = o + 20;
        wend = o + (((Py_ssize_t)d[o + 2] << 8) | d[o + 3]);
        hend = t + ((Py_ssize_t)(d[t + 12] >> 4) << 2);
        if (!(t + 20 <= hend && hend <= wend && hend <= n && (wend <= n || wend <= origlen)))
            return 0;
        L->ver = 4;
        L->src_a = o + 12, L->src_b = o + 16, L->dst_a = o + 16, L->dst_b = t;
    } else {
        return 0;
    }
    L->vid = vid;
    L->t = t, L->hend = hend, L->wend = wend;
    return 1;
}

/* The flow_key of a frame laid out as L (sniparse.tcp.flow_key: source address,
 * destination address, source port, destination port); returns its length. */
static inline int layout_key(const unsigned char *d, const seg_layout *L, unsigned char *key) {
    Py_ssize_t alen = L->src_b - L->src_a;
    memcpy(key, d + L->src_a, (size_t)alen);
    memcpy(key + alen, d + L->dst_a, (size_t)alen);
    memcpy(key + 2 * alen, d + L->t, 4);
    return (int)(2 * alen + 4);
}

/* The common-case decoder shared by segment(), segment_key() and scan_pcap_batch(): the
 * frame d[0:n] (link type lt, original length origlen) as a Segment, or None (a new
 * reference to it) where sniparse.decode's inline Python code falls through to the general
 * decoder; NULL with an exception set on a memory error. frame and ts are new references
 * that this function consumes. With key_out, the direction key (sniparse.tcp.flow_key) is
 * stored there as a new bytes object when a Segment is returned. */
static PyObject *segment_from(PyTypeObject *type, PyObject *frame, PyObject *ts, long lt,
                              const unsigned char *d, Py_ssize_t n, long long origlen,
                              PyObject **key_out) {
    seg_layout L;
    if (!segment_layout(lt, d, n, origlen, &L)) {
        Py_DECREF(frame);
        Py_DECREF(ts);
        Py_RETURN_NONE;
    }
    int ver = L.ver;
    long vid = L.vid;
    Py_ssize_t t = L.t, wend = L.wend, hend = L.hend;
    Py_ssize_t src_a = L.src_a, src_b = L.src_b, dst_a = L.dst_a, dst_b = L.dst_b;
    PyObject *seg = type->tp_alloc(type, 16);
    if (seg == NULL) {
        Py_DECREF(frame);
        Py_DECREF(ts);
        return NULL;
    }
    PyObject *vl = vid >= 0 ? Py_BuildValue("(l)", vid) : PyTuple_New(0);
    PyObject *items[16] = {
        frame,
        ts,
        u16_obj((unsigned)ver),
        cached_bytes(addr_cache, ADDR_BITS, d + src_a, src_b - src_a),
        cached_bytes(addr_cache, ADDR_BITS, d + dst_a, dst_b - dst_a),
        u16_obj(((unsigned)d[t] << 8) | d[t + 1]),
        u16_obj(((unsigned)d[t + 2] << 8) | d[t + 3]),
        PyLong_FromUnsignedLong(be32(d + t + 4)),
        PyLong_FromUnsignedLong(be32(d + t + 8)),
        u16_obj(d[t + 13]),
        u16_obj(((unsigned)d[t + 14] << 8) | d[t + 15]),
        slice(d, hend, wend < n ? wend : n),
        /* hend <= wend <= hend + 65535: the IP length fields are 16 bits wide */
        u16_obj((unsigned)(wend - hend)),
        slice(d, t + 20, hend),
        Py_NewRef(Py_None),
        vl,
    };
    int bad = 0;
    for (int i = 0; i < 16; i++) {
        if (items[i] == NULL)
            bad = 1;
        PyTuple_SET_ITEM(seg, i, items[i]); /* NULL items are fine for the dealloc */
    }
    if (bad) {
        Py_DECREF(seg);
        return NULL;
    }
    if (key_out == NULL)
        return seg;
    unsigned char key[36];
    *key_out = cached_bytes(key_cache, KEY_BITS, key, layout_key(d, &L, key));
    if (*key_out == NULL) {
        Py_DECREF(seg);
        return NULL;
    }
    return seg;
}

static PyObject *segment_impl(PyObject *const *args, Py_ssize_t nargs, int with_key) {
    if (nargs != 2 || !PyType_Check(args[0]) || !PyTuple_Check(args[1]) ||
        PyTuple_GET_SIZE(args[1]) < 5) {
        PyErr_SetString(PyExc_TypeError, "segment(segment_type, record)");
        return NULL;
    }
    PyTypeObject *type = (PyTypeObject *)args[0];
    PyObject *rec = args[1];
    PyObject *frame = PyTuple_GET_ITEM(rec, 0), *ts = PyTuple_GET_ITEM(rec, 1);
    PyObject *data = PyTuple_GET_ITEM(rec, 3);
    if (!PyBytes_Check(data))
        Py_RETURN_NONE;
    long lt = PyLong_AsLong(PyTuple_GET_ITEM(rec, 2));
    long long origlen = PyLong_AsLongLong(PyTuple_GET_ITEM(rec, 4));
    if (PyErr_Occurred()) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    const unsigned char *d = (const unsigned char *)PyBytes_AS_STRING(data);
    Py_ssize_t n = PyBytes_GET_SIZE(data);
    PyObject *kobj = NULL;
    PyObject *seg = segment_from(type, Py_NewRef(frame), Py_NewRef(ts), lt, d, n, origlen,
                                 with_key ? &kobj : NULL);
    if (seg == NULL || seg == Py_None || !with_key)
        return seg;
    PyObject *pair[2] = {seg, kobj};
    return steal_tuple(2, pair);
}

/* ---- many records per call: scan_pcap_batch ----------------------------------------- */

/* Direction keys of the records a batch has handed to Python so far, in a small
 * open-addressing set that is emptied by bumping a generation number (no clearing per
 * call). A later bulk packet whose key or reverse key is in it belongs to a flow that the
 * earlier packet may decide or close when Python feeds it, so C must not judge it. */
#define BATCH_MAX 1024
#define FED_SLOTS 4096 /* a power of two, four times BATCH_MAX: short probe chains */

typedef struct {
    uint32_t gen;
    int len;
    unsigned char key[36];
} fed_slot;

static fed_slot fed_set[FED_SLOTS];
static uint32_t fed_gen;
/* Set while a scan uses fed_set. An allocation may run the garbage collector and so a
 * finaliser's Python code, which could (absurdly) start another scan: that one treats every
 * bulk packet after its first record as one for Python to judge instead of sharing the set. */
static int fed_busy;

static inline unsigned fed_hash(const unsigned char *k, int len) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (int i = 0; i < len; i++)
        h = (h ^ k[i]) * 16777619u;
    return (unsigned)(h ^ (h >> 15)) & (FED_SLOTS - 1);
}

static int fed_has(const unsigned char *k, int len) {
    for (unsigned i = fed_hash(k, len);; i = (i + 1) & (FED_SLOTS - 1)) {
        fed_slot *s = &fed_set[i];
        if (s->gen != fed_gen)
            return 0;
        if (s->len == len && memcmp(s->key, k, (size_t)len) == 0)
            return 1;
    }
}

static void fed_add(const unsigned char *k, int len) {
    for (unsigned i = fed_hash(k, len);; i = (i + 1) & (FED_SLOTS - 1)) {
        fed_slot *s = &fed_set[i];
        if (s->gen != fed_gen) {
            s->gen = fed_gen;
            s->len = len;
            memcpy(s->key, k, (size_t)len);
            return;
        }
        if (s->len == len && memcmp(s->key, k, (size_t)len) == 0)
            return;
    }
}

/* The reverse direction key: dst + src + dport + sport. */
static inline void reverse_key(const unsigned char *k, int len, unsigned char *out) {
    int a = (len - 4) / 2;
    memcpy(out, k + a, (size_t)a);
    memcpy(out + a, k, (size_t)a);
    memcpy(out + 2 * a, k + 2 * a + 2, 2);
    memcpy(out + 2 * a + 2, k + 2 * a, 2);
}

/* May an earlier record of this call, handed to Python, decide, close or reopen the flow
 * of this key? Yes when its key or reverse key is in fed_set, or when the set is not this
 * call's (another scan owns it) and something was handed over already. */
static int fed_flow(const unsigned char *key, int klen, Py_ssize_t nitems, int own_set) {
    if (nitems == 0)
        return 0;
    if (!own_set)
        return 1;
    unsigned char rkey[36];
    reverse_key(key, klen, rkey);
    return fed_has(key, klen) || fed_has(rkey, klen);
}

/* Packets of just-closed connections: FlowTable.feed counts a packet that is not a pure
 * SYN as after_close, and does nothing else, when its key has a tombstone (`tomb`) and no
 * live flow (`flows`). The scan drops such a packet itself where the answer cannot change
 * before Python would get to it (see "Batches" in sniparse.analyze: the caller passes
 * `tomb` only while no close of the batch can trim it; the scan asks only before stop_ts,
 * and not when an earlier record of the batch has the flow) and when the C segment
 * decoder takes the frame with the same key (the general decoder may count or report
 * something on the way). The key object comes from the decoder's key cache: for a packet
 * that is not dropped the lookup costs a hash and a dict probe, and hand_over finds the
 * key there again. 1: drop it; 0: hand it over; -1: a Python error is set. */
static int after_close(PyObject *tomb, PyObject *flows, long lt, const unsigned char *data,
                       uint32_t caplen, uint32_t origlen, const unsigned char *key, int klen) {
    PyObject *kobj = key_object(key, klen);
    if (kobj == NULL)
        return -1;
    int r = PyDict_Contains(tomb, kobj);
    if (r > 0) {
        r = PyDict_Contains(flows, kobj);
        r = r < 0 ? -1 : !r;
    }
    Py_DECREF(kobj);
    if (r > 0) {
        seg_layout L;
        unsigned char skey[36];
        r = segment_layout(lt, data, (Py_ssize_t)caplen, origlen, &L) &&
            layout_key(data, &L, skey) == klen && memcmp(skey, key, (size_t)klen) == 0;
    }
    return r;
}

static int list_add3(PyObject *list, PyObject *a, PyObject *b, PyObject *c) {
    /* Steals a, b and c (any of them may be NULL: then -1, all released). */
    int r = -1;
    if (a != NULL && b != NULL && c != NULL && PyList_Append(list, a) == 0 &&
        PyList_Append(list, b) == 0 && PyList_Append(list, c) == 0)
        r = 0;
    Py_XDECREF(a);
    Py_XDECREF(b);
    Py_XDECREF(c);
    return r;
}

/* Appends one record for Python to a batch's `items`, as three entries: (Segment, key) when
 * the C segment decoder takes the frame, else (record, None) for the general decoder; then
 * the direction key when Python must check it against `decided` itself (`recheck`), else
 * None. 0, or -1 with an exception set. */
static int hand_over(PyObject *items, PyTypeObject *stype, PyTypeObject *rtype,
                     long long frame, long long ts, long lt, const unsigned char *data,
                     uint32_t caplen, uint32_t origlen, PyObject *iface, int recheck,
                     const unsigned char *key, int klen) {
    PyObject *fo = PyLong_FromLongLong(frame);
    PyObject *tso = PyLong_FromLongLong(ts);
    if (fo == NULL || tso == NULL) {
        Py_XDECREF(fo);
        Py_XDECREF(tso);
        return -1;
    }
    PyObject *kobj = NULL;
    PyObject *obj = segment_from(stype, Py_NewRef(fo), Py_NewRef(tso), lt, data,
                                 (Py_ssize_t)caplen, origlen, &kobj);
    if (obj == Py_None) {
        Py_DECREF(obj);
        PyObject *fields[6] = {Py_NewRef(fo), Py_NewRef(tso), PyLong_FromLong(lt),
                               PyBytes_FromStringAndSize((const char *)data, caplen),
                               PyLong_FromUnsignedLong(origlen), Py_NewRef(iface)};
        obj = record_of(rtype, fields);
        kobj = Py_NewRef(Py_None);
    }
    Py_DECREF(fo);
    Py_DECREF(tso);
    PyObject *chk = recheck ? PyBytes_FromStringAndSize((const char *)key, klen)
                            : Py_NewRef(Py_None);
    if (obj == NULL) {
        Py_XDECREF(kobj);
        Py_XDECREF(chk);
        return -1;
    }
    return list_add3(items, obj, kobj, chk);
}

/* Starts a batch scan's fed_set: 1 when this call owns it (emptied by a new generation),
 * 0 when another scan in progress does (the caller then treats every record after the first
 * handed over as possibly fed). The owner clears fed_busy when it ends. */
static int fed_begin(void) {
    if (fed_busy)
        return 0;
    fed_busy = 1;
    if (++fed_gen == 0) {
        /* Wrapped around: slots stamped with old generations could look current. */
        memset(fed_set, 0, sizeof fed_set);
        fed_gen = 1;
    }
    return 1;
}

enum { JUDGE_HAND = 0, JUDGE_SKIP = 1, JUDGE_AFTER_CLOSE = 2 };

/* What a batch scan does with a record whose frame (data, caplen, origlen, link type lt)
 * has direction key `key` (klen 0: none) and TCP flags `flags`, at time ts, after nitems
 * records handed over: JUDGE_SKIP, a bulk packet of a decided flow (skip_key counted it);
 * JUDGE_AFTER_CLOSE, a packet FlowTable.feed would only count as after_close (`tomb` NULL:
 * never); JUDGE_HAND, one for Python, with *recheck set when Python must test its key
 * against `decided` first (an earlier record of the batch may decide its flow). -1 with a
 * Python error set. */
static int judge(entry *cache, PyObject *decided, PyObject *pending, PyObject *tomb,
                 PyObject *flows, long lt, const unsigned char *data, uint32_t caplen,
                 uint32_t origlen, const unsigned char *key, int klen, int flags, long long ts,
                 long long stop_ts, Py_ssize_t nitems, int own_set, int *recheck) {
    int bulk = klen != 0 && !(flags & 0x07);
    *recheck = 0;
    if (bulk) {
        *recheck = fed_flow(key, klen, nitems, own_set);
        if (!*recheck) {
            int sk = skip_key(cache, key, klen, ts, decided, pending);
            if (sk != 0)
                return sk < 0 ? -1 : JUDGE_SKIP;
        }
    }
    /* Only packets without SYN, FIN or PSH are looked up: on the handshake benchmark every
     * after_close packet is a bare ACK, and looking up every record handed over cost more
     * than the drops saved (callgrind on its first 40 MB: +21 M). */
    if (*recheck || tomb == NULL || klen == 0 || (flags & 0x0B) || ts >= stop_ts)
        return JUDGE_HAND;
    int ac = after_close(tomb, flows, lt, data, caplen, origlen, key, klen);
    if (ac < 0)
        return -1;
    if (ac && !bulk && fed_flow(key, klen, nitems, own_set))
        ac = 0;
    return ac ? JUDGE_AFTER_CLOSE : JUDGE_HAND;
}

PyDoc_STRVAR(scan_pcap_batch_doc,
"scan_pcap_batch(buf, pos, big_endian, rec_hdr, ts_mult, limit, linktype, check_caplen,\n"
"                decided, pending, stop_ts, frame, iface, record_type, segment_type,\n"
"                max_items, tomb, flows)\n"
"    -> (pos, frames, skipped, bytes, cut, last_sec, expire_ts, max_ts, why, items,\n"
"        after_close)\n\n"
"scan_pcap over many records: skips bulk packets of decided flows as scan_pcap does,\n"
"and collects up to max_items of the other records in items, three entries each:\n"
"(Segment, key, None) when the C segment decoder takes the frame, (record, None, None)\n"
"when the general decoder must, and with a direction key in third place instead of None\n"
"when the packet (no SYN/FIN/RST) belongs to a flow an earlier item of the batch may\n"
"decide: Python skips it if that key is in decided by the time it gets there.\n"
"frames counts every record walked (skipped or collected), bytes, cut and max_ts cover\n"
"them all; last_sec is the seconds field of the last one. why: 1 stopped at a record\n"
"the framer must look at, or the buffer's end; 2 after a skipped record at or past\n"
"stop_ts (expire_ts is its time: the idle sweep is due); 3 after a collected record that\n"
"ends the batch (max_items reached, its time at or past stop_ts, or no direction key).\n"
"tomb (the flow table's tombstones, or None: off) and flows (its live flows by key):\n"
"packets the table would only count as after_close are dropped and counted in\n"
"after_close instead of handed over, where that is certain (frames counts them).");

static PyObject *scan_pcap_batch(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 18) {
        PyErr_SetString(PyExc_TypeError, "scan_pcap_batch() takes exactly 18 arguments");
        return NULL;
    }
    PyObject *iface = args[12];
    if (!PyType_Check(args[13]) || !PyType_IsSubtype((PyTypeObject *)args[13], &PyTuple_Type) ||
        !PyType_Check(args[14]) || !PyType_IsSubtype((PyTypeObject *)args[14], &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError,
                        "scan_pcap_batch(): record_type and segment_type must be tuple types");
        return NULL;
    }
    PyTypeObject *rtype = (PyTypeObject *)args[13];
    PyTypeObject *stype = (PyTypeObject *)args[14];
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    if (pos == -1 && PyErr_Occurred())
        return NULL;
    int big = PyObject_IsTrue(args[2]);
    Py_ssize_t rh = PyLong_AsSsize_t(args[3]);
    long long mult = PyLong_AsLongLong(args[4]);
    long long limit = PyLong_AsLongLong(args[5]);
    long lt = PyLong_AsLong(args[6]);
    int check_caplen = PyObject_IsTrue(args[7]);
    long long stop_ts = as_stop_ts(args[10]);
    long long frame0 = PyLong_AsLongLong(args[11]);
    Py_ssize_t max_items = PyLong_AsSsize_t(args[15]);
    if (PyErr_Occurred() || big < 0 || check_caplen < 0)
        return NULL;
    PyObject *decided = args[8];
    PyObject *pending = args[9];
    PyObject *tomb = args[16] == Py_None ? NULL : args[16];
    PyObject *flows = args[17];
    if (!PyAnySet_Check(decided) || !PyDict_Check(pending) ||
        (tomb != NULL && !PyDict_Check(tomb)) || !PyDict_Check(flows)) {
        PyErr_SetString(PyExc_TypeError,
                        "scan_pcap_batch(): decided must be a set, pending, tomb (or None) and "
                        "flows dicts");
        return NULL;
    }
    if (rh < 16 || pos < 0 || max_items < 1) {
        PyErr_SetString(PyExc_ValueError, "scan_pcap_batch(): bad header size, offset or count");
        return NULL;
    }
    if (max_items > BATCH_MAX)
        max_items = BATCH_MAX;
    PyObject *items = PyList_New(0);
    if (items == NULL)
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        Py_DECREF(items);
        return NULL;
    }
    const unsigned char *b = (const unsigned char *)view.buf;
    Py_ssize_t n = view.len;
    long long frames = 0, k = 0, nbytes = 0, cut = 0, last_sec = -1, expire_ts = -1, max_ts = -1;
    Py_ssize_t nitems = 0;
    int why = 1; /* STOP_OTHER */
    int failed = 0;
    unsigned char key[36];
    long long n_after_close = 0;
    int flags = 0;
    entry cache[CACHE_SIZE];
    for (int i = 0; i < CACHE_SIZE; i++)
        cache[i].obj = NULL;
    int own_set = fed_begin();

    while (pos + rh <= n) {
        const unsigned char *h = b + pos;
        uint32_t sec = rd32(h, big), frac = rd32(h + 4, big);
        uint32_t caplen = rd32(h + 8, big), origlen = rd32(h + 12, big);
        Py_ssize_t p = pos + rh;
        if ((long long)caplen > limit || p + (Py_ssize_t)caplen > n ||
            (check_caplen && caplen > origlen))
            break;
        int klen = frame_key(lt, b + p, (Py_ssize_t)caplen, key, &flags);
        long long ts = (long long)sec * 1000000000LL + (long long)frac * mult;
        int recheck = 0;
        int verdict = judge(cache, decided, pending, tomb, flows, lt, b + p, caplen, origlen, key,
                            klen, flags, ts, stop_ts, nitems, own_set, &recheck);
        if (verdict < 0) {
            failed = 1;
            break;
        }
        frames++;
        nbytes += caplen;
        if (caplen < origlen)
            cut++;
        if (ts > max_ts)
            max_ts = ts;
        last_sec = sec;
        pos = p + (Py_ssize_t)caplen;
        if (verdict == JUDGE_SKIP) {
            k++;
            if (ts >= stop_ts) {
                why = 2; /* STOP_EXPIRE */
                expire_ts = ts;
                break;
            }
            continue;
        }
        if (verdict == JUDGE_AFTER_CLOSE) {
            n_after_close++; /* before stop_ts: no sweep is due */
            continue;
        }
        /* A record for Python: the Segment and its key when the C decoder takes it. */
        if (hand_over(items, stype, rtype, frame0 + frames, ts, lt, b + p, caplen, origlen,
                      iface, recheck, key, klen) < 0) {
            failed = 1;
            break;
        }
        nitems++;
        if (klen == 0 || nitems >= max_items || ts >= stop_ts) {
            /* A record without a direction key may feed any flow (a tunnel, IP options):
             * nothing after it is judged in this call. */
            why = 3; /* STOP_FULL */
            break;
        }
        if (own_set)
            fed_add(key, klen);
    }
    if (own_set)
        fed_busy = 0;
    PyBuffer_Release(&view);
    if (flush_cache(cache, pending, failed) < 0) {
        Py_DECREF(items);
        return NULL;
    }
    PyObject *out[11] = {
        PyLong_FromSsize_t(pos), PyLong_FromLongLong(frames), PyLong_FromLongLong(k),
        PyLong_FromLongLong(nbytes), PyLong_FromLongLong(cut), PyLong_FromLongLong(last_sec),
        PyLong_FromLongLong(expire_ts), PyLong_FromLongLong(max_ts), PyLong_FromLong(why),
        items, PyLong_FromLongLong(n_after_close)};
    return steal_tuple(11, out);
}

PyDoc_STRVAR(scan_pcapng_batch_doc,
"scan_pcapng_batch(buf, pos, big_endian, table, max_block, decided, pending, stop_ts,\n"
"                  counts, seen, frame, record_type, segment_type, max_items, tomb, flows)\n"
"    -> (pos, frames, skipped, bytes, cut, last_ts, expire_ts, max_ts, why, items,\n"
"        after_close)\n\n"
"scan_pcap_batch for pcapng Enhanced Packet Blocks (table, max_block: as for scan_pcapng;\n"
"counts receives every packet walked per interface, skipped or collected; the ids of the\n"
"interfaces walked are appended to the list seen in the order of their first packet in\n"
"this call, so that the caller counts link types in the order they appear). Stops (why 1)\n"
"at any block that is not a sound EPB of a known interface or whose time does not fit in\n"
"64 bits; why 2 and 3, the items, tomb, flows and after_close as for scan_pcap_batch.\n"
"last_ts is the time of the last packet walked (or -1).");

static PyObject *scan_pcapng_batch(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 16) {
        PyErr_SetString(PyExc_TypeError, "scan_pcapng_batch() takes exactly 16 arguments");
        return NULL;
    }
    if (!PyType_Check(args[11]) || !PyType_IsSubtype((PyTypeObject *)args[11], &PyTuple_Type) ||
        !PyType_Check(args[12]) || !PyType_IsSubtype((PyTypeObject *)args[12], &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError,
                        "scan_pcapng_batch(): record_type and segment_type must be tuple types");
        return NULL;
    }
    PyTypeObject *rtype = (PyTypeObject *)args[11];
    PyTypeObject *stype = (PyTypeObject *)args[12];
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    int big = PyObject_IsTrue(args[2]);
    PyObject *table = args[3];
    long long max_block = PyLong_AsLongLong(args[4]);
    PyObject *decided = args[5];
    PyObject *pending = args[6];
    long long stop_ts = as_stop_ts(args[7]);
    PyObject *counts = args[8];
    PyObject *seen = args[9];
    long long frame0 = PyLong_AsLongLong(args[10]);
    Py_ssize_t max_items = PyLong_AsSsize_t(args[13]);
    PyObject *tomb = args[14] == Py_None ? NULL : args[14];
    PyObject *flows = args[15];
    if (PyErr_Occurred() || big < 0)
        return NULL;
    if (!PyList_Check(table) || !PyList_Check(counts) || !PyList_Check(seen) ||
        !PyAnySet_Check(decided) || (tomb != NULL && !PyDict_Check(tomb)) ||
        !PyDict_Check(flows) ||
        !PyDict_Check(pending) || PyList_GET_SIZE(counts) != PyList_GET_SIZE(table) ||
        pos < 0 || max_items < 1) {
        PyErr_SetString(PyExc_TypeError, "scan_pcapng_batch(): bad arguments");
        return NULL;
    }
    if (max_items > BATCH_MAX)
        max_items = BATCH_MAX;
    Py_ssize_t ntab = PyList_GET_SIZE(table);
    iface *tab = PyMem_Calloc((size_t)(ntab ? ntab : 1), sizeof(iface));
    PyObject **gidx = PyMem_Calloc((size_t)(ntab ? ntab : 1), sizeof(PyObject *));
    long long *cnt = PyMem_Calloc((size_t)(ntab ? ntab : 1), sizeof(long long));
    PyObject *items = PyList_New(0);
    if (tab == NULL || gidx == NULL || cnt == NULL || items == NULL) {
        PyMem_Free(tab);
        PyMem_Free(gidx);
        PyMem_Free(cnt);
        Py_XDECREF(items);
        return items == NULL ? NULL : PyErr_NoMemory();
    }
    int usable = 1;
    for (Py_ssize_t i = 0; i < ntab && usable; i++) {
        PyObject *t = PyList_GET_ITEM(table, i);
        if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 6) {
            usable = 0;
            break;
        }
        gidx[i] = PyTuple_GET_ITEM(t, 0); /* borrowed: the table outlives the call */
        tab[i].lt = PyLong_AsLong(PyTuple_GET_ITEM(t, 1));
        tab[i].mul = PyLong_AsLongLong(PyTuple_GET_ITEM(t, 3));
        tab[i].div = PyLong_AsLongLong(PyTuple_GET_ITEM(t, 4));
        tab[i].off = PyLong_AsLongLong(PyTuple_GET_ITEM(t, 5));
        if (PyErr_Occurred()) {
            /* Values beyond 64 bits: leave this section to Python. */
            PyErr_Clear();
            usable = 0;
        } else if (tab[i].mul < 0 || tab[i].div <= 0) {
            usable = 0;
        }
    }
#ifndef __SIZEOF_INT128__
    usable = 0; /* exact timestamps need 128-bit products; Python does it instead */
#endif
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        PyMem_Free(tab);
        PyMem_Free(gidx);
        PyMem_Free(cnt);
        Py_DECREF(items);
        return NULL;
    }
    const unsigned char *b = (const unsigned char *)view.buf;
    Py_ssize_t n = view.len;
    long long frames = 0, k = 0, nbytes = 0, cut = 0, last_ts = -1, expire_ts = -1, max_ts = -1;
    Py_ssize_t nitems = 0;
    int why = 1; /* STOP_OTHER */
    int failed = 0;
    unsigned char key[36];
    long long n_after_close = 0;
    int flags = 0;
    entry cache[CACHE_SIZE];
    for (int i = 0; i < CACHE_SIZE; i++)
        cache[i].obj = NULL;
    int own_set = fed_begin();

    while (usable && pos + 28 <= n) {
        const unsigned char *h = b + pos;
        uint32_t btype = rd32(h, big), blen = rd32(h + 4, big), ifid = rd32(h + 8, big);
        uint32_t tsh = rd32(h + 12, big), tsl = rd32(h + 16, big);
        uint32_t caplen = rd32(h + 20, big), origlen = rd32(h + 24, big);
        long long end = (long long)pos + blen;
        if (btype != 6 || ifid >= (uint32_t)ntab || end > n || (blen & 3) ||
            !(32 + (long long)caplen <= (long long)blen && (long long)blen <= max_block) ||
            rd32(b + end - 4, big) != blen)
            break;
#ifdef __SIZEOF_INT128__
        __int128 t = ((__int128)(((uint64_t)tsh << 32) | tsl) * tab[ifid].mul) / tab[ifid].div +
                     tab[ifid].off;
        if (t > (__int128)INT64_MAX || t < (__int128)INT64_MIN)
            break;
        long long ts = (long long)t;
#else
        long long ts = 0;
#endif
        long lt = tab[ifid].lt;
        const unsigned char *d = h + 28;
        int klen = frame_key(lt, d, (Py_ssize_t)caplen, key, &flags);
        int recheck = 0;
        int verdict = judge(cache, decided, pending, tomb, flows, lt, d, caplen, origlen, key,
                            klen, flags, ts, stop_ts, nitems, own_set, &recheck);
        if (verdict < 0) {
            failed = 1;
            break;
        }
        if (cnt[ifid]++ == 0) {
            PyObject *io = PyLong_FromUnsignedLong(ifid);
            int r = io == NULL ? -1 : PyList_Append(seen, io);
            Py_XDECREF(io);
            if (r < 0) {
                cnt[ifid]--;
                failed = 1;
                break;
            }
        }
        frames++;
        nbytes += caplen;
        if (caplen < origlen)
            cut++;
        if (ts > max_ts)
            max_ts = ts;
        last_ts = ts;
        pos = (Py_ssize_t)end;
        if (verdict == JUDGE_SKIP) {
            k++;
            if (ts >= stop_ts) {
                why = 2; /* STOP_EXPIRE */
                expire_ts = ts;
                break;
            }
            continue;
        }
        if (verdict == JUDGE_AFTER_CLOSE) {
            n_after_close++; /* before stop_ts: no sweep is due */
            continue;
        }
        if (hand_over(items, stype, rtype, frame0 + frames, ts, lt, d, caplen, origlen,
                      gidx[ifid], recheck, key, klen) < 0) {
            failed = 1;
            break;
        }
        nitems++;
        if (klen == 0 || nitems >= max_items || ts >= stop_ts) {
            why = 3; /* STOP_FULL */
            break;
        }
        if (own_set)
            fed_add(key, klen);
    }
    if (own_set)
        fed_busy = 0;
    PyBuffer_Release(&view);
    if (flush_cache(cache, pending, failed) < 0)
        failed = 1;
    for (Py_ssize_t i = 0; i < ntab && !failed; i++) {
        if (cnt[i] == 0)
            continue;
        PyObject *old = PyList_GET_ITEM(counts, i);
        long long o = PyLong_AsLongLong(old);
        PyObject *nw = (o == -1 && PyErr_Occurred()) ? NULL : PyLong_FromLongLong(o + cnt[i]);
        if (nw == NULL) {
            failed = 1;
            break;
        }
        PyList_SetItem(counts, i, nw); /* steals nw, releases old */
    }
    PyMem_Free(tab);
    PyMem_Free(gidx);
    PyMem_Free(cnt);
    if (failed) {
        Py_DECREF(items);
        return NULL;
    }
    PyObject *out[11] = {
        PyLong_FromSsize_t(pos), PyLong_FromLongLong(frames), PyLong_FromLongLong(k),
        PyLong_FromLongLong(nbytes), PyLong_FromLongLong(cut), PyLong_FromLongLong(last_ts),
        PyLong_FromLongLong(expire_ts), PyLong_FromLongLong(max_ts), PyLong_FromLong(why),
        items, PyLong_FromLongLong(n_after_close)};
    return steal_tuple(11, out);
}

/* ---- the ClientHello parser's common case ------------------------------------------- */

/* sni_status values, interned once (the Python parser's are interned literals). */
static PyObject *str_present, *str_absent, *str_empty;

#define CH_NFIELDS 30   /* fields of sniparse.tls.ClientHello */
#define CH_MAX_EXTS 128 /* more extensions than this: leave the hello to Python */

static inline unsigned be16(const unsigned char *p) { return ((unsigned)p[0] << 8) | p[1]; }

/* The int objects of 16-bit wire values, made once each when first needed (a hello holds
 * dozens of cipher suites, extension types, groups and signature algorithms, and the same
 * few hundred values recur in every hello of a capture). A new reference, or NULL. */
static PyObject *u16_objs[65536];

static inline PyObject *u16_obj(unsigned v) {
    PyObject *o = u16_objs[v];
    if (o == NULL) {
        o = PyLong_FromLong((long)v);
        if (o == NULL)
            return NULL;
        u16_objs[v] = o; /* the cache keeps this reference for good */
    }
    return Py_NewRef(o);
}

/* A tuple of `count` big-endian uint16 at p. */
static PyObject *u16_tuple(const unsigned char *p, Py_ssize_t count) {
    PyObject *t = PyTuple_New(count);
    if (t == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *v = u16_obj(be16(p + 2 * i));
        if (v == NULL) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, i, v);
    }
    return t;
}

/* A tuple of `count` bytes at p as ints. */
static PyObject *u8_tuple(const unsigned char *p, Py_ssize_t count) {
    PyObject *t = PyTuple_New(count);
    if (t == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < count; i++)
        PyTuple_SET_ITEM(t, i, PyLong_FromLong(p[i])); /* small ints: cached, never NULL */
    return t;
}

/* ---- repeated field values --------------------------------------------------------
 *
 * Consecutive hellos from the same client program repeat most fields byte for byte: the
 * cipher suites, groups, signature algorithms, versions, point formats, ALPN lists, the
 * (type, body) pair of most extensions, often the host name. The parser hands out the very
 * same object for a field whose bytes equal the last ones seen in its slot of a small
 * direct-mapped cache, instead of building an equal tuple again; the record builder then
 * skips storing a value identical to the previous hello's, and the fingerprint cache
 * compares by identity first. A slot answers only for the same kind of value built from
 * exactly the same bytes (compared in full), and its values are immutable (tuples of ints,
 * bytes and str), so sharing one is exact. Fields longer than FIELD_MAX bytes are built
 * afresh each time. Memory: FIELD_SETS * 2 slots of at most FIELD_MAX bytes and one value.
 *
 * Each hash picks a set of two slots, the more recently used first (a direct-mapped table
 * of 512 slots lost some of the benchmark's ~130 recurring fields to collisions, every
 * hello rebuilding them). Measured with callgrind on 40 MB of the handshake benchmark:
 * see the commit messages. */
#define FIELD_BITS 9 /* 512 sets of two slots */
#define FIELD_SETS (1 << FIELD_BITS)
#define FIELD_MAX 240 /* bytes of a cacheable field */

enum field_kind { K_U16 = 1, K_U8, K_EXT, K_SNI, K_ALPN };

typedef struct {
    PyObject *value; /* a strong reference, or NULL for an empty slot */
    uint32_t hash;
    unsigned short len;
    unsigned char kind;
    unsigned char raw[FIELD_MAX];
} field_slot;

static field_slot field_slots[FIELD_SETS][2];

/* A hash of kind and p[0:len] (any len); its top bits pick a slot. */
static inline uint32_t field_hash(unsigned kind, const unsigned char *p, Py_ssize_t len) {
    uint32_t h = ((uint32_t)len << 8) ^ kind, w;
    Py_ssize_t i = 0;
    for (; i + 4 <= len; i += 4) {
        memcpy(&w, p + i, 4);
        h = (((h << 5) | (h >> 27)) ^ w) * 0x9E3779B1u;
    }
    for (w = 0; i < len; i++)
        w = (w << 8) | p[i];
    return (((h << 5) | (h >> 27)) ^ w) * 0x9E3779B1u;
}

/* The value of `kind` for the bytes p[0:len]: build(p, len) (a new reference, or NULL on a
 * Python error), or the object the slot for those bytes already holds. */
static PyObject *cached_field(unsigned kind, const unsigned char *p, Py_ssize_t len,
                              PyObject *(*build)(const unsigned char *, Py_ssize_t)) {
    if (len > FIELD_MAX)
        return build(p, len);
    uint32_t h = field_hash(kind, p, len);
    field_slot *set = field_slots[h >> (32 - FIELD_BITS)], *s = set;
    for (int way = 0; way < 2; way++, s++)
        if (s->value != NULL && s->hash == h && s->kind == kind && s->len == len &&
            memcmp(s->raw, p, (size_t)len) == 0) {
            PyObject *o = Py_NewRef(s->value);
            if (way == 1) { /* now the more recently used: swap the two slots */
                field_slot t = set[0];
                set[0] = set[1];
                set[1] = t;
            }
            return o;
        }
    PyObject *o = build(p, len);
    if (o == NULL)
        return NULL;
    /* The older slot goes; the newer moves to second place and the new value comes first.
     * The set is consistent before the old value is released (a tuple of ints, bytes and
     * str: releasing it runs no Python code, but keep the order safe anyway). */
    PyObject *old = set[1].value;
    set[1] = set[0];
    s = &set[0];
    s->value = Py_NewRef(o);
    s->hash = h;
    s->kind = (unsigned char)kind;
    s->len = (unsigned short)len;
    memcpy(s->raw, p, (size_t)len);
    Py_XDECREF(old);
    return o;
}

/* Builders for cached_field, each of the bytes of one field. */
static PyObject *build_u16s(const unsigned char *p, Py_ssize_t len) {
    return u16_tuple(p, len >> 1);
}

static PyObject *build_u8s(const unsigned char *p, Py_ssize_t len) { return u8_tuple(p, len); }

/* An extension with its 4-byte header: the (type, body) pair of ClientHello.extensions. */
static PyObject *build_ext(const unsigned char *p, Py_ssize_t len) {
    PyObject *type = u16_obj(be16(p)), *t = PyTuple_New(2);
    PyObject *body = PyBytes_FromStringAndSize((const char *)p + 4, len - 4);
    if (type == NULL || t == NULL || body == NULL) {
        Py_XDECREF(type);
        Py_XDECREF(t);
        Py_XDECREF(body);
        return NULL;
    }
    PyTuple_SET_ITEM(t, 0, type);
    PyTuple_SET_ITEM(t, 1, body);
    return t;
}

/* A server_name body holding one ASCII host_name entry, the name at p[5:len], not empty:
 * (sni, sni_raw, server_names). */
static PyObject *build_sni(const unsigned char *p, Py_ssize_t len) {
    PyObject *raw = PyBytes_FromStringAndSize((const char *)p + 5, len - 5);
    if (raw == NULL)
        return NULL;
    PyObject *text = PyUnicode_DecodeASCII((const char *)p + 5, len - 5, NULL);
    PyObject *entry = PyTuple_New(2), *names = PyTuple_New(1), *out = PyTuple_New(3);
    if (text == NULL || entry == NULL || names == NULL || out == NULL) {
        Py_DECREF(raw);
        Py_XDECREF(text);
        Py_XDECREF(entry);
        Py_XDECREF(names);
        Py_XDECREF(out);
        return NULL;
    }
    PyTuple_SET_ITEM(entry, 0, PyLong_FromLong(0)); /* a small int: cached, never NULL */
    PyTuple_SET_ITEM(entry, 1, Py_NewRef(raw));
    PyTuple_SET_ITEM(names, 0, entry);
    PyTuple_SET_ITEM(out, 0, text);
    PyTuple_SET_ITEM(out, 1, raw);
    PyTuple_SET_ITEM(out, 2, names);
    return out;
}

/* The number of protocol names of a well-formed ALPN ProtocolNameList (RFC 7301 §3.1) in
 * b[0:el], or -1 when it is not well formed. */
static Py_ssize_t alpn_count(const unsigned char *b, Py_ssize_t el) {
    if (el < 2 || (Py_ssize_t)be16(b) != el - 2)
        return -1;
    Py_ssize_t count = 0;
    for (Py_ssize_t q = 2; q < el; count++) {
        q += 1 + (Py_ssize_t)b[q];
        if (q > el)
            return -1;
    }
    return count;
}

/* A well-formed ALPN extension body: (alpn_raw, alpn), the names as bytes and as str
 * (UTF-8 with errors replaced). */
static PyObject *build_alpn(const unsigned char *b, Py_ssize_t el) {
    Py_ssize_t count = alpn_count(b, el);
    PyObject *r = PyTuple_New(count), *t = PyTuple_New(count), *out = NULL;
    if (r == NULL || t == NULL)
        goto fail;
    Py_ssize_t q = 2;
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_ssize_t pl = b[q++];
        PyObject *x = PyBytes_FromStringAndSize((const char *)b + q, pl);
        if (x == NULL)
            goto fail;
        PyTuple_SET_ITEM(r, i, x);
        x = PyUnicode_DecodeUTF8((const char *)b + q, pl, "replace");
        if (x == NULL)
            goto fail;
        PyTuple_SET_ITEM(t, i, x);
        q += pl;
    }
    if ((out = PyTuple_New(2)) == NULL)
        goto fail;
    PyTuple_SET_ITEM(out, 0, r);
    PyTuple_SET_ITEM(out, 1, t);
    return out;
fail:
    Py_XDECREF(r);
    Py_XDECREF(t);
    return NULL;
}

#define KS_MAX_GROUPS 64 /* more key shares: their groups' tuple is built afresh */

/* The groups of a KeyShareClientHello (RFC 8446 §4.2.8) in b[0:el]: a tuple, Py_None (a
 * new reference) when not well formed, NULL on a Python error. The shares themselves
 * differ per hello, so the groups are gathered first and their tuple looked up. */
static PyObject *key_share_groups(const unsigned char *b, Py_ssize_t el) {
    if (el < 2 || (Py_ssize_t)be16(b) != el - 2)
        return Py_NewRef(Py_None);
    unsigned char groups[2 * KS_MAX_GROUPS];
    Py_ssize_t count = 0;
    for (Py_ssize_t q = 2; q < el; count++) {
        if (el - q < 4)
            return Py_NewRef(Py_None);
        if (count < KS_MAX_GROUPS)
            memcpy(groups + 2 * count, b + q, 2);
        q += 4 + (Py_ssize_t)be16(b + q + 2);
        if (q > el)
            return Py_NewRef(Py_None);
    }
    if (count <= KS_MAX_GROUPS)
        return cached_field(K_U16, groups, 2 * count, build_u16s);
    PyObject *t = PyTuple_New(count);
    if (t == NULL)
        return NULL;
    Py_ssize_t q = 2;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *v = u16_obj(be16(b + q));
        if (v == NULL) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, i, v);
        q += 4 + (Py_ssize_t)be16(b + q + 2);
    }
    return t;
}

static PyObject *build_record(PyTypeObject *cls, PyObject *names, PyObject *const *values);

PyDoc_STRVAR(client_hello_fields_doc,
"client_hello_fields(d, msg, end, record_version, wire_len, records, is_ip[, cls, names])\n"
"-> tuple | cls instance | None\n\n"
"The common case of sniparse.tls._parse_ch_message, in C: parse the ClientHello handshake\n"
"message d[msg:end] (type byte included; d is bytes, a bytearray or a byte memoryview) and\n"
"return every ClientHello field value in declaration order (what _new_client_hello takes),\n"
"or, given the record class and its field names, the record new_record(cls, names, values)\n"
"would build (without the tuple of values in between).\n"
"is_ip is tls._is_ip_literal, called for a host name that might be an address literal.\n"
"None for anything but a well-formed hello with at most one extension of each type, an\n"
"ASCII host name and the usual single-entry server_name list: the Python parser then\n"
"decides (it raises, or handles the odd case), so this never gives a different answer.");

static PyObject *client_hello_fields(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 7 && nargs != 9) {
        PyErr_SetString(PyExc_TypeError, "client_hello_fields() takes 7 or 9 arguments");
        return NULL;
    }
    if (nargs == 9) {
        PyObject *names = args[8];
        if (!PyType_Check(args[7]) || !PyTuple_CheckExact(names) ||
            PyTuple_GET_SIZE(names) != CH_NFIELDS) {
            PyErr_SetString(PyExc_TypeError,
                            "client_hello_fields(): cls, then a tuple of the field names");
            return NULL;
        }
        for (Py_ssize_t i = 0; i < CH_NFIELDS; i++)
            if (!PyUnicode_Check(PyTuple_GET_ITEM(names, i))) {
                PyErr_SetString(PyExc_TypeError, "client_hello_fields(): names must be str");
                return NULL;
            }
    }
    PyObject *obj = args[0];
    if (!PyBytes_CheckExact(obj) && !PyByteArray_CheckExact(obj) && !PyMemoryView_Check(obj))
        Py_RETURN_NONE;
    if (!PyLong_CheckExact(args[1]) || !PyLong_CheckExact(args[2]))
        Py_RETURN_NONE;
    Py_ssize_t msg = PyLong_AsSsize_t(args[1]), end = PyLong_AsSsize_t(args[2]);
    if (PyErr_Occurred()) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    Py_buffer view;
    if (PyMemoryView_Check(obj)) {
        /* Only a plain one-dimensional byte view reads as the Python code reads it. */
        const Py_buffer *mv = PyMemoryView_GET_BUFFER(obj);
        if (mv->ndim != 1 || mv->itemsize != 1 ||
            (mv->format != NULL && strcmp(mv->format, "B") != 0))
            Py_RETURN_NONE;
    }
    if (PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE) < 0) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    const unsigned char *d = (const unsigned char *)view.buf;
    PyObject *f[CH_NFIELDS] = {NULL};
    PyObject *result = Py_None; /* borrowed until the end: None declines, NULL fails */
    unsigned short types[CH_MAX_EXTS];
    Py_ssize_t offs[CH_MAX_EXTS];
    int next = 0;

    if (msg < 0 || end > view.len || end - msg < 4)
        goto done;
    Py_ssize_t p = msg + 4;
    if (end - p < 38 || d[p] != 3) /* version(2) random(32) sid_len cs_len(2) comp_len */
        goto done;
    unsigned legacy_version = be16(d + p);
    Py_ssize_t rnd = p + 2;
    p += 34;
    Py_ssize_t sid_len = d[p++];
    if (sid_len > 32 || p + sid_len + 2 > end)
        goto done;
    Py_ssize_t sid = p;
    p += sid_len;
    Py_ssize_t cs_len = (Py_ssize_t)be16(d + p);
    p += 2;
    if ((cs_len & 1) || p + cs_len + 1 > end)
        goto done;
    Py_ssize_t cs = p;
    p += cs_len;
    Py_ssize_t comp_len = d[p++];
    if (p + comp_len > end)
        goto done;
    Py_ssize_t comp = p;
    p += comp_len;
    if (p < end) {
        /* The extensions vector fills the rest of the message exactly; every extension
         * fits; no type twice (RFC 8446 §4.2). */
        if (end - p < 2 || p + 2 + (Py_ssize_t)be16(d + p) != end)
            goto done;
        p += 2;
        while (p < end) {
            if (end - p < 4 || next == CH_MAX_EXTS)
                goto done;
            unsigned et = be16(d + p);
            Py_ssize_t el = (Py_ssize_t)be16(d + p + 2);
            if (p + 4 + el > end)
                goto done;
            for (int i = 0; i < next; i++)
                if (types[i] == et)
                    goto done;
            types[next] = (unsigned short)et;
            offs[next++] = p;
            p += 4 + el;
        }
    }

    result = NULL; /* from here on, a NULL field is a Python error */
    f[0] = Py_NewRef(args[3]);
    if ((f[1] = u16_obj(legacy_version)) == NULL ||
        (f[2] = PyBytes_FromStringAndSize((const char *)d + rnd, 32)) == NULL ||
        (f[3] = PyBytes_FromStringAndSize((const char *)d + sid, sid_len)) == NULL ||
        (f[4] = cached_field(K_U16, d + cs, cs_len, build_u16s)) == NULL ||
        (f[5] = cached_field(K_U8, d + comp, comp_len, build_u8s)) == NULL ||
        (f[6] = PyTuple_New(next)) == NULL)
        goto done;
    const unsigned char *name = NULL; /* the host name when sni_status is "present" */
    Py_ssize_t name_len = 0;
    int psk = 0, early = 0, ech = 0, esni = 0;
    Py_ssize_t padding = 0;
    for (int i = 0; i < next; i++) {
        const unsigned char *b = d + offs[i] + 4;
        Py_ssize_t el = (Py_ssize_t)be16(b - 2);
        unsigned et = types[i];
        /* The bodies of key_share, pre_shared_key, padding and ECH differ per hello (or
         * are long): not worth a slot. */
        PyObject *ext;
        if (et == 51 || et == 41 || et == 21 || et == 0xFE0D)
            ext = build_ext(b - 4, el + 4);
        else
            ext = cached_field(K_EXT, b - 4, el + 4, build_ext);
        if (ext == NULL)
            goto done;
        PyTuple_SET_ITEM(f[6], i, ext);
        switch (et) {
        case 0: /* server_name */
            if (el == 0) {
                f[7] = Py_NewRef(str_empty); /* an empty list: no usable name */
                f[10] = PyTuple_New(0);
            } else if (el > 5 && b[2] == 0 && (Py_ssize_t)be16(b) == el - 2 &&
                       (Py_ssize_t)be16(b + 3) == el - 5) {
                /* the usual single host_name entry, its name not empty */
                for (Py_ssize_t k = 5; k < el; k++)
                    if (b[k] & 0x80) /* non-ASCII: the Python code decodes it */
                        goto decline;
                name = b + 5;
                name_len = el - 5;
                f[7] = Py_NewRef(str_present);
                PyObject *sni = cached_field(K_SNI, b, el, build_sni);
                if (sni == NULL)
                    goto done;
                f[8] = Py_NewRef(PyTuple_GET_ITEM(sni, 0));
                f[9] = Py_NewRef(PyTuple_GET_ITEM(sni, 1));
                f[10] = Py_NewRef(PyTuple_GET_ITEM(sni, 2));
                Py_DECREF(sni);
            } else {
                goto decline;
            }
            if (f[10] == NULL)
                goto done;
            break;
        case 10: /* supported_groups */
        case 13: /* signature_algorithms */
            if (el < 2 || (el & 1) || (Py_ssize_t)be16(b) != el - 2)
                goto decline;
            if ((f[et == 10 ? 17 : 19] = cached_field(K_U16, b + 2, el - 2, build_u16s)) == NULL)
                goto done;
            break;
        case 43: /* supported_versions */
            if (el < 1 || b[0] != el - 1 || ((el - 1) & 1))
                goto decline;
            if ((f[16] = cached_field(K_U16, b + 1, el - 1, build_u16s)) == NULL)
                goto done;
            break;
        case 51: /* key_share */
            if ((f[20] = key_share_groups(b, el)) == NULL)
                goto done;
            if (f[20] == Py_None)
                goto decline;
            break;
        case 16: { /* application_layer_protocol_negotiation */
            if (alpn_count(b, el) < 0)
                goto decline;
            PyObject *lists = cached_field(K_ALPN, b, el, build_alpn);
            if (lists == NULL)
                goto done;
            f[15] = Py_NewRef(PyTuple_GET_ITEM(lists, 0));
            f[14] = Py_NewRef(PyTuple_GET_ITEM(lists, 1));
            Py_DECREF(lists);
            break;
        }
        case 11: /* ec_point_formats */
            if (el < 1 || b[0] != el - 1)
                goto decline;
            if ((f[18] = cached_field(K_U8, b + 1, el - 1, build_u8s)) == NULL)
                goto done;
            break;
        case 21:
            padding = el;
            break;
        case 41:
            psk = 1;
            break;
        case 42:
            early = 1;
            break;
        case 0xFE0D:
            ech = 1;
            break;
        case 0xFFCE:
            esni = 1;
            break;
        default:
            break;
        }
    }
    int trailing_dot = 0, maybe_ip = 0;
    if (name != NULL) {
        trailing_dot = name[name_len - 1] == '.';
        /* _is_ip_literal's cheap rejection, exactly, for an ASCII name: the name without
         * trailing dots (and brackets) is empty, or ends in a non-digit and has no ':'. */
        Py_ssize_t a = 0, z = name_len;
        while (z > 0 && name[z - 1] == '.')
            z--;
        if (z - a >= 2 && name[a] == '[' && name[z - 1] == ']') {
            a++;
            z--;
        }
        if (z > a)
            maybe_ip = (name[z - 1] >= '0' && name[z - 1] <= '9') ||
                       memchr(name + a, ':', (size_t)(z - a)) != NULL;
    }
    PyBuffer_Release(&view);
    view.obj = NULL;
    if (maybe_ip) {
        f[11] = PyObject_CallOneArg(args[6], f[8]);
        if (f[11] == NULL || !PyBool_Check(f[11])) {
            PyErr_Clear(); /* the Python parser will call it again and say */
            result = Py_None;
            goto done;
        }
    } else {
        f[11] = Py_NewRef(Py_False);
    }
    if (f[7] == NULL)
        f[7] = Py_NewRef(str_absent);
    if (f[8] == NULL)
        f[8] = Py_NewRef(Py_None);
    if (f[9] == NULL)
        f[9] = Py_NewRef(Py_None);
    for (int i = 10; i <= 20; i++)
        if (f[i] == NULL && i != 11 && i != 12 && i != 13)
            f[i] = PyTuple_New(0);
    f[12] = Py_NewRef(trailing_dot ? Py_True : Py_False);
    f[13] = Py_NewRef(Py_False); /* sni_non_ascii: such names are declined above */
    f[21] = Py_NewRef(psk ? Py_True : Py_False);
    f[22] = Py_NewRef(early ? Py_True : Py_False);
    f[23] = Py_NewRef(ech ? Py_True : Py_False);
    f[24] = PyLong_FromSsize_t(padding);
    f[25] = Py_NewRef(Py_False); /* sslv2 */
    f[26] = Py_NewRef(args[4]);
    f[27] = Py_NewRef(args[5]);
    f[28] = PyTuple_New(0);
    f[29] = Py_NewRef(esni ? Py_True : Py_False);
    for (int i = 0; i < CH_NFIELDS; i++)
        if (f[i] == NULL)
            goto done;
    if (nargs == 9) {
        /* The record itself: spares the tuple of values and a call (~1,000 instructions a
         * hello, callgrind on the handshake benchmark). build_record borrows the values. */
        result = build_record((PyTypeObject *)args[7], args[8], f);
        for (int i = 0; i < CH_NFIELDS; i++)
            Py_DECREF(f[i]);
        return result;
    }
    result = PyTuple_New(CH_NFIELDS);
    if (result != NULL) {
        for (int i = 0; i < CH_NFIELDS; i++)
            PyTuple_SET_ITEM(result, i, f[i]); /* the references move into the tuple */
        return result;
    }
    goto done;
decline:
    result = Py_None;
done:
    if (view.obj != NULL)
        PyBuffer_Release(&view);
    for (int i = 0; i < CH_NFIELDS; i++)
        Py_XDECREF(f[i]);
    if (result == Py_None)
        Py_RETURN_NONE;
    return NULL;
}

/* ---- records: frozen dataclass instances built from their field values ------------- */

/* A record class instance is what its generated __init__ leaves: object.__new__(cls), then
 * object.__setattr__(obj, name, value) for each field in declaration order. Each of those
 * calls looks the name up along the class's MRO (a data descriptor would take the store)
 * before storing into the instance: ~9,000 instructions per ClientHello (30 fields). For a
 * class whose instances have a __dict__ and whose field names are distinct and not data
 * descriptors (a dataclass without slots) the same object is its __dict__ filled in field
 * order, so that dict is built here and installed as the instance's __dict__. Which classes
 * qualify is checked once per class and list of names, and remembered while the class's
 * version tag stands (any change to the class or its bases gives it a new tag); the rest go
 * the object.__setattr__ way.
 *
 * How the dict is built. Storing a value costs a dict lookup whether the key is new or
 * already there (~170-180 instructions a field on 3.11, callgrind), but copying a dict is
 * one allocation and a memcpy of its table. Consecutive records of a kind repeat many values
 * as the very same objects (None, False, small ints, cached strings and tuples: about half
 * the fields of the handshake benchmark's ClientHellos and Handshakes), so each kind keeps
 * a private dict holding its last record's values (`last`): a new record stores only the
 * values that are not identical to those, into `last`, and gets a copy of it. Same keys in
 * the same order with the same values: the dict the stores into an empty one would give.
 * `last` is never handed out, so nobody else changes it; its old values are released only
 * once it is consistent again (releasing one can run arbitrary code, which may build
 * another record), and a record built while another of its kind is being built (from such
 * code) takes the object.__setattr__ way. Cost: the last record of each kind stays alive
 * until the next one. */
#define RECORD_KINDS 8
#define RECORD_MAX_FIELDS 64 /* more fields: the object.__setattr__ way */

typedef struct {
    PyTypeObject *cls; /* strong references while the entry is in use */
    PyObject *names;   /* the names tuple first seen (its items are what is compared: mypyc
                        * code may hand over a fresh tuple of the same names per call) */
    PyObject *last;    /* {name: the last record's value} in names order; private */
    PyObject **held;   /* held[i] is last[names[i]] (borrowed: `last` holds them) */
    unsigned int tag;  /* cls->tp_version_tag when checked */
    int busy;          /* a record of this kind is being built */
} record_kind;

static record_kind record_kinds[RECORD_KINDS];
static unsigned record_next;

static int same_names(PyObject *a, PyObject *b) {
    if (a == b)
        return 1;
    Py_ssize_t n = PyTuple_GET_SIZE(a);
    if (PyTuple_GET_SIZE(b) != n)
        return 0;
    for (Py_ssize_t i = 0; i < n; i++)
        if (PyTuple_GET_ITEM(a, i) != PyTuple_GET_ITEM(b, i))
            return 0;
    return 1;
}

/* Can instances of cls take a ready-made __dict__ holding `names` (a tuple of str)? */
static int record_dict_ok(PyTypeObject *cls, PyObject *names) {
    int has_dict = cls->tp_dictoffset != 0;
#ifdef Py_TPFLAGS_MANAGED_DICT
    has_dict = has_dict || PyType_HasFeature(cls, Py_TPFLAGS_MANAGED_DICT);
#endif
    if (!has_dict || PyType_HasFeature(cls, Py_TPFLAGS_IS_ABSTRACT) ||
        PyTuple_GET_SIZE(names) > RECORD_MAX_FIELDS)
        return 0;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(names); i++) {
        PyObject *name = PyTuple_GET_ITEM(names, i);
        if (!PyUnicode_CheckExact(name))
            return 0;
        /* The lookup object.__setattr__ makes (it also gives cls a valid version tag). */
        PyObject *attr = _PyType_Lookup(cls, name);
        if (attr != NULL && Py_TYPE(attr)->tp_descr_set != NULL)
            return 0;
    }
    return PyType_HasFeature(cls, Py_TPFLAGS_VALID_VERSION_TAG); /* else nothing to go by */
}

/* {name: None for each name} in order, sized as a dict presized for them; Py_None without
 * an exception when a name repeats (its stores would not map one to one onto fields). */
static PyObject *blank_dict(PyObject *names) {
    Py_ssize_t n = PyTuple_GET_SIZE(names);
#if PY_VERSION_HEX < 0x030D0000
    PyObject *blank = _PyDict_NewPresized(n);
#else
    PyObject *blank = PyDict_New();
#endif
    if (blank == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++)
        if (PyDict_SetItem(blank, PyTuple_GET_ITEM(names, i), Py_None) < 0) {
            Py_DECREF(blank);
            return NULL;
        }
    if (PyDict_GET_SIZE(blank) != n) {
        Py_DECREF(blank);
        Py_RETURN_NONE;
    }
    return blank;
}

/* The remembered kind for (cls, names) when its instances can take a ready-made __dict__;
 * NULL when they cannot (use object.__setattr__), or with an exception set. */
static record_kind *record_kind_of(PyTypeObject *cls, PyObject *names) {
    record_kind *k = NULL;
    for (int i = 0; i < RECORD_KINDS; i++)
        if (record_kinds[i].cls == cls && same_names(record_kinds[i].names, names)) {
            k = &record_kinds[i];
            break;
        }
    if (k != NULL && PyType_HasFeature(cls, Py_TPFLAGS_VALID_VERSION_TAG) &&
        k->tag == cls->tp_version_tag)
        return k->busy ? NULL : k;
    if (!record_dict_ok(cls, names))
        return NULL;
    if (k == NULL) {
        PyObject *blank = blank_dict(names);
        if (blank == NULL || blank == Py_None) {
            Py_XDECREF(blank);
            return NULL;
        }
        /* Never a slot in use further up the stack: its builder still needs it. */
        k = &record_kinds[record_next++ % RECORD_KINDS];
        for (int i = 0; i < RECORD_KINDS && k->busy; i++)
            k = &record_kinds[record_next++ % RECORD_KINDS];
        PyObject **held = NULL;
        if (!k->busy && (held = PyMem_New(PyObject *, PyTuple_GET_SIZE(names))) == NULL)
            PyErr_NoMemory();
        if (held == NULL) {
            Py_DECREF(blank);
            return NULL;
        }
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(names); i++)
            held[i] = Py_None;
        PyTypeObject *old_cls = k->cls;
        PyObject *old_names = k->names, *old_last = k->last;
        PyMem_Free(k->held);
        k->cls = (PyTypeObject *)Py_NewRef(cls);
        k->names = Py_NewRef(names);
        k->last = blank;
        k->held = held;
        k->tag = cls->tp_version_tag;
        /* Released last: it may run code that builds records (k is consistent by then). */
        Py_XDECREF(old_cls);
        Py_XDECREF(old_names);
        Py_XDECREF(old_last);
        return k;
    }
    k->tag = cls->tp_version_tag;
    return k->busy ? NULL : k;
}

/* The dict of a k record whose fields are values[i] (borrowed): `last` updated to them, and
 * copied. NULL on a Python error. */
static PyObject *record_dict(record_kind *k, PyObject *const *values) {
    PyObject *old[RECORD_MAX_FIELDS]; /* replaced values, released at the end */
    Py_ssize_t n_old = 0, n = PyTuple_GET_SIZE(k->names);
    PyObject *dict = NULL;
    k->busy = 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v = values[i];
        if (v == k->held[i])
            continue;
        old[n_old++] = Py_NewRef(k->held[i]); /* `last` no longer holds it after the store */
        if (PyDict_SetItem(k->last, PyTuple_GET_ITEM(k->names, i), v) < 0)
            goto done;
        k->held[i] = v;
    }
    dict = PyDict_Copy(k->last);
done:
    k->busy = 0;
    for (Py_ssize_t j = 0; j < n_old; j++)
        Py_DECREF(old[j]);
    return dict;
}

/* A new cls instance whose fields names[i] (a tuple of str) are values[i] (borrowed), as
 * the class's generated __init__ sets them; NULL on a Python error. */
static PyObject *build_record(PyTypeObject *cls, PyObject *names, PyObject *const *values) {
    Py_ssize_t n = PyTuple_GET_SIZE(names);
    record_kind *k = record_kind_of(cls, names);
    if (k == NULL) {
        if (PyErr_Occurred())
            return NULL;
        PyObject *none = PyTuple_New(0);
        if (none == NULL)
            return NULL;
        PyObject *obj = PyBaseObject_Type.tp_new(cls, none, NULL);
        Py_DECREF(none);
        if (obj == NULL)
            return NULL;
        for (Py_ssize_t i = 0; i < n; i++)
            if (PyObject_GenericSetAttr(obj, PyTuple_GET_ITEM(names, i), values[i]) < 0) {
                Py_DECREF(obj);
                return NULL;
            }
        return obj;
    }
    PyObject *dict = record_dict(k, values);
    if (dict == NULL)
        return NULL;
    PyObject *obj;
#if PY_VERSION_HEX < 0x030C0000
    /* 3.11: object.__new__ would only add the empty inline attribute values that installing
     * the dict then turns into a dict and throws away; the bare allocation, with neither
     * values nor dict, is the state the dict goes into directly. (Later versions keep the
     * values inline in the object, set up by object.__new__, so they take that way.) */
    obj = cls->tp_alloc(cls, 0);
#else
    PyObject *none = PyTuple_New(0);
    obj = none == NULL ? NULL : PyBaseObject_Type.tp_new(cls, none, NULL);
    Py_XDECREF(none);
#endif
    if (obj == NULL || PyObject_GenericSetDict(obj, dict, NULL) < 0) {
        Py_XDECREF(obj);
        Py_DECREF(dict);
        return NULL;
    }
    Py_DECREF(dict);
    return obj;
}

PyDoc_STRVAR(new_record_doc,
"new_record(cls, names, values) -> cls instance\n\n"
"The object that object.__new__(cls), then object.__setattr__(obj, names[i], values[i])\n"
"for each i in order, makes: what a frozen dataclass's generated __init__ does, without a\n"
"Python call per field (for a class without slots, its __dict__ built directly).\n"
"names and values are tuples of the same length; names are str.");

static PyObject *new_record(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 3 || !PyType_Check(args[0]) || !PyTuple_Check(args[1]) ||
        !PyTuple_Check(args[2]) || PyTuple_GET_SIZE(args[1]) != PyTuple_GET_SIZE(args[2])) {
        PyErr_SetString(PyExc_TypeError, "new_record(cls, names, values): tuples of one length");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(args[1]); i++)
        if (!PyUnicode_Check(PyTuple_GET_ITEM(args[1], i))) {
            PyErr_SetString(PyExc_TypeError, "new_record(): names must be str");
            return NULL;
        }
    return build_record((PyTypeObject *)args[0], args[1],
                        ((PyTupleObject *)args[2])->ob_item);
}

/* ---- the server's first reaction: ServerHello or alert ----------------------------- */

/* The fixed ServerHello.random of a HelloRetryRequest (RFC 8446 §4.1.3). */
static const unsigned char hrr_random[32] = {
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c};

#define SR_MAX_RECORD_LEN ((1 << 14) + 2048) /* tls.MAX_RECORD_LEN */
#define SR_MAX_HELLO_LEN (1 << 16)           /* tls.MAX_HELLO_LEN */
#define SR_NFIELDS 6                         /* fields of tls.ServerReaction */
#define SH_NFIELDS 10                        /* fields of tls.ServerHello */

/* The kinds, interned on first use (the Python code's are interned literals). */
static PyObject *str_server_hello, *str_alert;

/* build_record() of the class `cls` (a type, checked by kit_ok). */
static PyObject *new_record_of(PyObject *cls, PyObject *names, PyObject *const *values) {
    return build_record((PyTypeObject *)cls, names, values);
}

/* Is `kit` (cls, field names) * 3 for ServerReaction, ServerHello and Alert? */
static int kit_ok(PyObject *kit) {
    static const Py_ssize_t counts[3] = {SR_NFIELDS, SH_NFIELDS, 2};
    if (!PyTuple_CheckExact(kit) || PyTuple_GET_SIZE(kit) != 6)
        return 0;
    for (int i = 0; i < 3; i++) {
        PyObject *cls = PyTuple_GET_ITEM(kit, 2 * i), *names = PyTuple_GET_ITEM(kit, 2 * i + 1);
        if (!PyType_Check(cls) || !PyTuple_CheckExact(names) ||
            PyTuple_GET_SIZE(names) != counts[i])
            return 0;
        for (Py_ssize_t k = 0; k < counts[i]; k++)
            if (!PyUnicode_CheckExact(PyTuple_GET_ITEM(names, k)))
                return 0;
    }
    return 1;
}

/* The ServerHello message d[0:end] (type byte included, end = 4 + its length, at least 40)
 * as tls._parse_server_hello reads it, built with `kit`: a new reference, Py_None (a new
 * reference) when the Python parser would raise, NULL on a Python error. */
static PyObject *server_hello(const unsigned char *d, Py_ssize_t end, unsigned record_version,
                              PyObject *kit) {
    unsigned legacy_version = be16(d + 4);
    Py_ssize_t p = 38, sid = p, sid_len = 0;
    unsigned suite, comp = 0;
    if ((d[4] == 0x7F && d[5] < 22) || legacy_version == 0x0304) {
        /* TLS 1.3 drafts before -22: no session id, no compression method. */
        suite = be16(d + p);
        p += 2;
    } else {
        if (end - p < 4)
            return Py_NewRef(Py_None);
        sid_len = d[p++];
        sid = p;
        if (sid_len > 32 || p + sid_len + 3 > end)
            return Py_NewRef(Py_None);
        p += sid_len;
        suite = be16(d + p);
        comp = d[p + 2];
        p += 3;
    }
    /* Check the extensions block and count its entries before building anything. */
    Py_ssize_t exts = p, count = 0;
    unsigned selected = legacy_version;
    if (p < end) {
        if (end - p < 2 || p + 2 + (Py_ssize_t)be16(d + p) != end)
            return Py_NewRef(Py_None);
        for (p += 2, exts = p; p < end; count++) {
            if (end - p < 4)
                return Py_NewRef(Py_None);
            unsigned et = be16(d + p);
            Py_ssize_t el = (Py_ssize_t)be16(d + p + 2);
            p += 4;
            if (p + el > end)
                return Py_NewRef(Py_None);
            if (et == 43) { /* supported_versions: the single selected version, RFC 8446 §4.2.1 */
                if (el != 2)
                    return Py_NewRef(Py_None);
                selected = be16(d + p);
            }
            p += el;
        }
    }
    PyObject *f[SH_NFIELDS] = {NULL}, *result = NULL;
    f[0] = u16_obj(record_version);
    f[1] = u16_obj(legacy_version);
    f[2] = PyBytes_FromStringAndSize((const char *)d + 6, 32);
    f[3] = PyBytes_FromStringAndSize((const char *)d + sid, sid_len);
    f[4] = u16_obj(suite);
    f[5] = PyLong_FromLong((long)comp); /* a small int: cached */
    f[6] = PyTuple_New(count);
    f[7] = u16_obj(selected);
    f[8] = Py_NewRef(memcmp(d + 6, hrr_random, 32) == 0 ? Py_True : Py_False);
    f[9] = Py_NewRef(Py_False); /* sslv2 */
    for (int i = 0; i < SH_NFIELDS; i++)
        if (f[i] == NULL)
            goto done;
    p = exts;
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_ssize_t el = (Py_ssize_t)be16(d + p + 2);
        PyObject *ext = PyTuple_New(2);
        if (ext == NULL)
            goto done;
        PyTuple_SET_ITEM(f[6], i, ext);
        PyObject *t = u16_obj(be16(d + p)), *body;
        body = PyBytes_FromStringAndSize((const char *)d + p + 4, el);
        PyTuple_SET_ITEM(ext, 0, t);
        PyTuple_SET_ITEM(ext, 1, body);
        if (t == NULL || body == NULL)
            goto done;
        p += 4 + el;
    }
    result = new_record_of(PyTuple_GET_ITEM(kit, 2), PyTuple_GET_ITEM(kit, 3), f);
done:
    for (int i = 0; i < SH_NFIELDS; i++)
        Py_XDECREF(f[i]);
    return result;
}

PyDoc_STRVAR(server_reaction_doc,
"server_reaction(buf, start, kit) -> ServerReaction | None\n\n"
"The common case of sniparse.tls._server_reaction, in C: the record at buf[start:] (buf is\n"
"bytes or a bytearray) is an alert record whose first alert is there, or a handshake record\n"
"holding a whole well-formed ServerHello message. Returns the ServerReaction the Python code\n"
"returns (with its ServerHello or Alert), built from kit = (ServerReaction, its field\n"
"names, ServerHello, its field names, Alert, its field names) as new_record() builds a\n"
"record. None for anything else (more bytes needed, a ServerHello over several records,\n"
"other records, not TLS, SSLv2, anything the Python code raises on): the Python code then\n"
"decides, so this never gives a different answer.");

static PyObject *server_reaction(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 3 || !kit_ok(args[2])) {
        PyErr_SetString(PyExc_TypeError, "server_reaction(buf, start, kit): kit is "
                                         "(ServerReaction, names, ServerHello, names, Alert, names)");
        return NULL;
    }
    if (str_alert == NULL) {
        str_server_hello = PyUnicode_InternFromString("server_hello");
        if (str_server_hello == NULL)
            return NULL;
        str_alert = PyUnicode_InternFromString("alert");
        if (str_alert == NULL)
            return NULL;
    }
    PyObject *obj = args[0], *kit = args[2];
    const unsigned char *buf;
    Py_ssize_t n;
    if (PyByteArray_CheckExact(obj)) {
        buf = (const unsigned char *)PyByteArray_AS_STRING(obj);
        n = PyByteArray_GET_SIZE(obj);
    } else if (PyBytes_CheckExact(obj)) {
        buf = (const unsigned char *)PyBytes_AS_STRING(obj);
        n = PyBytes_GET_SIZE(obj);
    } else {
        Py_RETURN_NONE;
    }
    if (!PyLong_CheckExact(args[1]))
        Py_RETURN_NONE;
    Py_ssize_t start = PyLong_AsSsize_t(args[1]);
    if (start == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    if (start < 0 || n - start < 7 || buf[start + 1] != 3)
        Py_RETURN_NONE;
    const unsigned char *r = buf + start;
    Py_ssize_t rlen = (Py_ssize_t)be16(r + 3);
    if (rlen > SR_MAX_RECORD_LEN)
        Py_RETURN_NONE;
    PyObject *f[SR_NFIELDS] = {NULL}, *result = NULL;
    if (r[0] == 21) { /* alert(21): level, description (RFC 8446 §6) */
        if (rlen < 2)
            Py_RETURN_NONE;
        PyObject *al[2] = {PyLong_FromLong(r[5]), PyLong_FromLong(r[6])}; /* small ints */
        f[3] = new_record_of(PyTuple_GET_ITEM(kit, 4), PyTuple_GET_ITEM(kit, 5), al);
        Py_DECREF(al[0]);
        Py_DECREF(al[1]);
        if (f[3] == NULL)
            return NULL;
        f[0] = Py_NewRef(str_alert);
        f[1] = PyLong_FromSsize_t(start + 7);
        f[2] = Py_NewRef(Py_None);
        f[4] = PyLong_FromLong(21);
    } else if (r[0] == 22 && r[5] == 2) { /* handshake(22) starting with a ServerHello(2) */
        /* The whole message inside this record (RFC 8446 §5.1 lets it span records: the
         * Python code gathers those), at least version(2) random(32) suite(2) long. */
        if (rlen < 4 || n - start < 9)
            Py_RETURN_NONE;
        Py_ssize_t need = 4 + (((Py_ssize_t)r[6] << 16) | ((Py_ssize_t)r[7] << 8) | r[8]);
        if (need > rlen || need > SR_MAX_HELLO_LEN + 4 || n - start - 5 < need || need < 40)
            Py_RETURN_NONE;
        f[2] = server_hello(r + 5, need, be16(r + 1), kit);
        if (f[2] == NULL)
            return NULL;
        if (f[2] == Py_None) {
            Py_DECREF(f[2]);
            Py_RETURN_NONE;
        }
        f[0] = Py_NewRef(str_server_hello);
        f[1] = PyLong_FromSsize_t(start + 5 + need);
        f[3] = Py_NewRef(Py_None);
        f[4] = PyLong_FromLong(22);
    } else {
        Py_RETURN_NONE;
    }
    f[5] = PyTuple_New(0); /* warnings */
    for (int i = 0; i < SR_NFIELDS; i++)
        if (f[i] == NULL)
            goto done;
    result = new_record_of(PyTuple_GET_ITEM(kit, 0), PyTuple_GET_ITEM(kit, 1), f);
done:
    for (int i = 0; i < SR_NFIELDS; i++)
        Py_XDECREF(f[i]);
    return result;
}

/* ---- ndjson rows: sniparse.report._ndjson_fast --------------------------------------
 *
 * ndjson_row(src, kit) writes the common case of sniparse.report._ndjson_fast: the ndjson
 * line of a handshake's instance dict when the whole line is ASCII, else None and the
 * Python function decides (it writes the line, or returns None for the JSON encoder). So,
 * like client_hello_fields, it never needs the Python code's odd cases, only its text.
 * kit = (names, keys, column_text, iso): the columns after "ts", their ', "name": ' texts,
 * and the Python functions _json_column_text(i, v) and _iso(ts_ns).
 *
 * C writes what needs no escaping straight into one buffer: numbers (a float as repr()
 * writes it: PyOS_double_to_string, mode 'r', ADD_DOT_0), null / true / false, bytes as
 * hex, and ASCII str (alone or in a tuple) holding no '"', '\' or control character. A str
 * that needs escaping goes to _json_column_text, so the escaping is the json module's and
 * is written once. The head is _RowTime's: for ts_ns of one second or more the ISO text up
 * to the decimal point is cached per second and the six fraction digits are ts_ns's own.
 * The instance dict holds the columns in order (FlowTable._build makes it in field order),
 * so they are read by stepping through it; a key out of place is looked up instead.
 *
 * Measured under callgrind on 40 MB of the handshake benchmark capture (12,000 rows):
 * 9,500 instructions a row against 24,100 for the compiled Python. tests/test_rows_c.py
 * checks the C line against the Python function and the JSON encoder.
 */

enum { ROW_ERROR = -1, ROW_OK = 0, ROW_DECLINE = 1 };

#define ROW_ISO_MAX 40 /* longest cached ISO head; _iso's is 20 characters */

typedef struct {
    char *data; /* stack, or PyMem memory once it outgrows it */
    Py_ssize_t len, cap;
    char stack[4096];
} row_buf;

/* The ISO text of the second row_sec up to its decimal point (row_sec -1: none yet). */
static long long row_sec = -1;
static char row_iso[ROW_ISO_MAX];
static Py_ssize_t row_iso_len;
static PyObject *row_str_ts_ns;

/* Make room for n more bytes at b->data + b->len (row_room's slow path). */
static int row_grow(row_buf *b, Py_ssize_t n) {
    if (n > PY_SSIZE_T_MAX / 4 - b->len) {
        PyErr_NoMemory();
        return ROW_ERROR;
    }
    Py_ssize_t cap = b->cap * 2;
    while (cap - b->len < n)
        cap *= 2;
    char *data = PyMem_Malloc((size_t)cap);
    if (data == NULL) {
        PyErr_NoMemory();
        return ROW_ERROR;
    }
    memcpy(data, b->data, (size_t)b->len);
    if (b->data != b->stack)
        PyMem_Free(b->data);
    b->data = data;
    b->cap = cap;
    return ROW_OK;
}

static inline int row_room(row_buf *b, Py_ssize_t n) {
    return n <= b->cap - b->len ? ROW_OK : row_grow(b, n);
}

static inline int row_put(row_buf *b, const void *p, Py_ssize_t n) {
    if (row_room(b, n) < 0)
        return ROW_ERROR;
    memcpy(b->data + b->len, p, (size_t)n);
    b->len += n;
    return ROW_OK;
}

#define ROW_PUT_LIT(b, lit) row_put((b), (lit), (Py_ssize_t)sizeof(lit) - 1)

/* An ASCII str, or ROW_DECLINE for any other text. */
static int row_put_ascii(row_buf *b, PyObject *s) {
    if (!PyUnicode_IS_COMPACT_ASCII(s))
        return ROW_DECLINE;
    return row_put(b, PyUnicode_1BYTE_DATA(s), PyUnicode_GET_LENGTH(s));
}

/* The eight bytes at p (ASCII) hold no '"', '\' or byte below 0x20: the "has a byte
 * below k" and "has a zero byte" word tests of Hacker's Delight (6-1), exact as to whether
 * any byte matches. */
static inline int row_plain8(const unsigned char *p) {
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t x, q, s;
    memcpy(&x, p, 8);
    q = x ^ (ones * '"');
    s = x ^ (ones * '\\');
    return !((((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((s - ones) & ~s)) & highs);
}

#if defined(__SSE2__)
#include <emmintrin.h>

/* The sixteen bytes at p (ASCII, so the signed compare is right) need no escaping. */
static inline int row_plain16(const unsigned char *p) {
    __m128i x = _mm_loadu_si128((const __m128i *)p);
    __m128i bad = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('"')),
                                            _mm_cmpeq_epi8(x, _mm_set1_epi8('\\'))),
                               _mm_cmplt_epi8(x, _mm_set1_epi8(0x20)));
    return _mm_movemask_epi8(bad) == 0;
}
#endif

/* The n ASCII bytes at p need no JSON escaping: sixteen at a time with SSE2, else eight,
 * the last block overlapping the one before when n is not a multiple of its size. Most of
 * a row is such text (the fingerprint strings are hundreds of characters): SSE2 takes the
 * str columns from ~3,000 to ~1,900 instructions a row under callgrind. */
static int row_plain(const unsigned char *p, Py_ssize_t n) {
#if defined(__SSE2__)
    if (n >= 16) {
        for (Py_ssize_t k = 0; k + 16 < n; k += 16)
            if (!row_plain16(p + k))
                return 0;
        return row_plain16(p + n - 16);
    }
#endif
    if (n < 8) {
        for (Py_ssize_t k = 0; k < n; k++)
            if (p[k] < 0x20 || p[k] == '"' || p[k] == '\\')
                return 0;
        return 1;
    }
    for (Py_ssize_t k = 0; k + 8 < n; k += 8)
        if (!row_plain8(p + k))
            return 0;
    return row_plain8(p + n - 8);
}

/* A str column value that needs no escaping as '"text"', else ROW_DECLINE. */
static int row_put_plain(row_buf *b, PyObject *s) {
    if (!PyUnicode_IS_COMPACT_ASCII(s))
        return ROW_DECLINE;
    const unsigned char *p = PyUnicode_1BYTE_DATA(s);
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    if (!row_plain(p, n))
        return ROW_DECLINE;
    if (row_room(b, n + 2) < 0)
        return ROW_ERROR;
    char *at = b->data + b->len;
    at[0] = '"';
    memcpy(at + 1, p, (size_t)n);
    at[n + 1] = '"';
    b->len += n + 2;
    return ROW_OK;
}

/* The decimal digits of v at out (room for 20); returns their count. */
static Py_ssize_t row_digits(long long v, char *out) {
    char tmp[24];
    int n = 0;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    Py_ssize_t k = 0;
    if (v < 0)
        out[k++] = '-';
    while (n)
        out[k++] = tmp[--n];
    return k;
}

/* str(v) of an exact int. */
static int row_int(row_buf *b, PyObject *v) {
    int overflow;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (x == -1 && PyErr_Occurred())
        return ROW_ERROR;
    if (overflow) {
        PyObject *s = PyObject_Str(v);
        if (s == NULL)
            return ROW_ERROR;
        int r = row_put_ascii(b, s);
        Py_DECREF(s);
        return r;
    }
    if (row_room(b, 21) < 0)
        return ROW_ERROR;
    b->len += row_digits(x, b->data + b->len);
    return ROW_OK;
}

/* repr(v) of a finite float, as float.__repr__ writes it (PyOS_double_to_string, mode 'r').
 *
 * Short cut, for most rows' outcome_ms (a time in ms from microsecond or nanosecond
 * stamps): when |v| in [1e-4, 1e9) is k millionths exactly as read (k / 1e6 == |v|, the
 * division correctly rounded as reading the decimal is), the decimal k / 10^6 has at most
 * 15 significant digits, and no two such decimals read as one double (DBL_DIG), so it is the
 * shortest text that reads back as v: repr's digits, which repr writes without an exponent
 * in that range. It costs ~40 instructions instead of ~2,300 under callgrind. */
static int row_float(row_buf *b, double v) {
    double a = fabs(v);
    if (a >= 1e-4 && a < 1e9) {
        long long k = (long long)(a * 1e6 + 0.5);
        if ((double)k / 1e6 == a) {
            char d[24];
            /* d[:whole] are the units, the rest millionths (k >= 100: three digits or
             * more); the fraction keeps one digit at least ("3.0", "0.0001"). */
            Py_ssize_t n = row_digits(k, d), whole = n > 6 ? n - 6 : 0, last = n;
            while (last > whole + 1 && d[last - 1] == '0')
                last--;
            if (row_room(b, n + 10) < 0)
                return ROW_ERROR;
            char *at = b->data + b->len, *start = at;
            if (v < 0)
                *at++ = '-';
            if (whole) {
                memcpy(at, d, (size_t)whole);
                at += whole;
            } else {
                *at++ = '0';
            }
            *at++ = '.';
            for (Py_ssize_t z = n; z < 6; z++)
                *at++ = '0';
            memcpy(at, d + whole, (size_t)(last - whole));
            at += last - whole;
            b->len += at - start;
            return ROW_OK;
        }
    }
    char *text = PyOS_double_to_string(v, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (text == NULL)
        return ROW_ERROR;
    int r = row_put(b, text, (Py_ssize_t)strlen(text));
    PyMem_Free(text);
    return r;
}

/* bytes as '"hex"' (what the Python code writes: '"' + v.hex() + '"'). */
static int row_hex(row_buf *b, PyObject *v) {
    static const char digits[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(v);
    Py_ssize_t n = PyBytes_GET_SIZE(v);
    if (n > PY_SSIZE_T_MAX / 4) {
        PyErr_NoMemory();
        return ROW_ERROR;
    }
    if (row_room(b, 2 * n + 2) < 0)
        return ROW_ERROR;
    char *at = b->data + b->len;
    *at++ = '"';
    for (Py_ssize_t k = 0; k < n; k++) {
        *at++ = digits[p[k] >> 4];
        *at++ = digits[p[k] & 15];
    }
    *at = '"';
    b->len += 2 * n + 2;
    return ROW_OK;
}

/* _json_column_text(i, v): column i's ', "name": value' text, escaped by the json module. */
static int row_column_text(row_buf *b, PyObject *column_text, Py_ssize_t i, PyObject *v) {
    PyObject *index = PyLong_FromSsize_t(i);
    if (index == NULL)
        return ROW_ERROR;
    PyObject *args[2] = {index, v};
    PyObject *text = PyObject_Vectorcall(column_text, args, 2, NULL);
    Py_DECREF(index);
    if (text == NULL)
        return ROW_ERROR;
    int r = PyUnicode_Check(text) ? row_put_ascii(b, text) : ROW_DECLINE;
    Py_DECREF(text);
    return r;
}

/* The head: '{"ts_ns": N, "ts": "ISO"' or '{"ts_ns": N, "ts": null'. */
static int row_head(row_buf *b, PyObject *ts, PyObject *iso) {
    int overflow;
    long long t = PyLong_AsLongLongAndOverflow(ts, &overflow);
    if (t == -1 && PyErr_Occurred())
        return ROW_ERROR;
    if (overflow)
        return ROW_DECLINE; /* beyond int64 (a corrupt capture): Python writes it */
    if (ROW_PUT_LIT(b, "{\"ts_ns\": ") < 0 || row_room(b, 21) < 0)
        return ROW_ERROR;
    char *digits = b->data + b->len;
    Py_ssize_t nd = row_digits(t, digits);
    b->len += nd;
    PyObject *text = NULL; /* _iso(ts_ns), once called */
    long long sec = t / 1000000000LL; /* the floor for t >= 0 */
    if (t >= 1000000000LL && sec != row_sec) {
        text = PyObject_CallOneArg(iso, ts);
        if (text == NULL)
            return ROW_ERROR;
        /* Cached as _RowTime caches it: without the six fraction digits and 'Z'. */
        if (PyUnicode_CheckExact(text) && PyUnicode_IS_COMPACT_ASCII(text) &&
            PyUnicode_GET_LENGTH(text) >= 7 && PyUnicode_GET_LENGTH(text) - 7 <= ROW_ISO_MAX) {
            row_iso_len = PyUnicode_GET_LENGTH(text) - 7;
            memcpy(row_iso, PyUnicode_1BYTE_DATA(text), (size_t)row_iso_len);
            row_sec = sec;
        }
    }
    int r;
    if (t >= 1000000000LL && sec == row_sec) {
        /* The fraction: the first six of ts_ns's last nine digits (b->data may move). */
        char frac[6];
        memcpy(frac, b->data + b->len - 9, 6);
        if (ROW_PUT_LIT(b, ", \"ts\": \"") < 0 || row_put(b, row_iso, row_iso_len) < 0 ||
            row_put(b, frac, 6) < 0 || ROW_PUT_LIT(b, "Z\"") < 0)
            r = ROW_ERROR;
        else
            r = ROW_OK;
        Py_XDECREF(text);
        return r;
    }
    if (text == NULL) {
        text = PyObject_CallOneArg(iso, ts);
        if (text == NULL)
            return ROW_ERROR;
    }
    if (text == Py_None) {
        r = ROW_PUT_LIT(b, ", \"ts\": null");
    } else if (!PyUnicode_Check(text)) {
        r = ROW_DECLINE;
    } else if (ROW_PUT_LIT(b, ", \"ts\": \"") < 0) {
        r = ROW_ERROR;
    } else {
        /* The ISO text is digits and punctuation: nothing to escape. */
        r = row_put_ascii(b, text);
        if (r == ROW_OK)
            r = ROW_PUT_LIT(b, "\"");
    }
    Py_DECREF(text);
    return r;
}

/* A tuple value after its key: [] or a list of int and plain ASCII str (VLAN ids, ALPN
 * names, TLS versions), else ROW_DECLINE. */
static int row_tuple(row_buf *b, PyObject *v) {
    Py_ssize_t n = PyTuple_GET_SIZE(v);
    if (ROW_PUT_LIT(b, "[") < 0)
        return ROW_ERROR;
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *x = PyTuple_GET_ITEM(v, k);
        if (k && ROW_PUT_LIT(b, ", ") < 0)
            return ROW_ERROR;
        int r = PyUnicode_CheckExact(x) ? row_put_plain(b, x)
                : PyLong_CheckExact(x)  ? row_int(b, x)
                                        : ROW_DECLINE;
        if (r != ROW_OK)
            return r;
    }
    return ROW_PUT_LIT(b, "]");
}

/* Every element of the tuple v is an exact str. */
static int row_all_str(PyObject *v) {
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(v); k++)
        if (!PyUnicode_CheckExact(PyTuple_GET_ITEM(v, k)))
            return 0;
    return 1;
}

/* Column i's value v after its key (written at mark): ROW_DECLINE for what the Python
 * function writes itself (or leaves to the encoder). */
static int row_value(row_buf *b, PyObject *column_text, Py_ssize_t i, PyObject *v,
                     Py_ssize_t mark) {
    int r;
    if (PyUnicode_CheckExact(v)) {
        r = row_put_plain(b, v);
    } else if (v == Py_None) {
        return ROW_PUT_LIT(b, "null");
    } else if (v == Py_True) {
        return ROW_PUT_LIT(b, "true");
    } else if (v == Py_False) {
        return ROW_PUT_LIT(b, "false");
    } else if (PyLong_CheckExact(v)) {
        return row_int(b, v);
    } else if (PyFloat_CheckExact(v)) {
        if (!isfinite(PyFloat_AS_DOUBLE(v)))
            return ROW_DECLINE;
        return row_float(b, PyFloat_AS_DOUBLE(v));
    } else if (PyBytes_CheckExact(v)) {
        return row_hex(b, v);
    } else if (PyTuple_CheckExact(v)) {
        r = row_tuple(b, v);
        if (r == ROW_DECLINE && !row_all_str(v))
            return ROW_DECLINE;
    } else {
        return ROW_DECLINE;
    }
    if (r != ROW_DECLINE)
        return r;
    /* A str, or a tuple of str, to escape: the key and value text from Python. */
    b->len = mark;
    return row_column_text(b, column_text, i, v);
}

/* The row into b: ROW_OK, ROW_DECLINE or ROW_ERROR. */
static int row_fill(row_buf *b, PyObject *src, PyObject *names, PyObject *keys,
                    PyObject *column_text, PyObject *iso) {
    Py_ssize_t pos = 0;
    int in_order = 1;
    PyObject *key, *v;
    if (!(PyDict_Next(src, &pos, &key, &v) && key == row_str_ts_ns)) {
        in_order = 0;
        v = PyDict_GetItemWithError(src, row_str_ts_ns);
        if (v == NULL) {
            if (!PyErr_Occurred())
                PyErr_SetObject(PyExc_KeyError, row_str_ts_ns);
            return ROW_ERROR;
        }
    }
    if (!PyLong_CheckExact(v))
        return ROW_DECLINE;
    Py_INCREF(v); /* _iso is Python code: src could lose v meanwhile */
    int r = row_head(b, v, iso);
    Py_DECREF(v);
    for (Py_ssize_t i = 0; r == ROW_OK && i < PyTuple_GET_SIZE(names); i++) {
        PyObject *name = PyTuple_GET_ITEM(names, i);
        if (!(in_order && PyDict_Next(src, &pos, &key, &v) && key == name)) {
            in_order = 0;
            v = PyDict_GetItemWithError(src, name);
            if (v == NULL) {
                if (!PyErr_Occurred())
                    PyErr_SetObject(PyExc_KeyError, name);
                return ROW_ERROR;
            }
        }
        Py_ssize_t mark = b->len;
        PyObject *k = PyTuple_GET_ITEM(keys, i);
        if (row_put(b, PyUnicode_1BYTE_DATA(k), PyUnicode_GET_LENGTH(k)) < 0)
            return ROW_ERROR;
        Py_INCREF(v);
        r = row_value(b, column_text, i, v, mark);
        Py_DECREF(v);
    }
    return r == ROW_OK ? ROW_PUT_LIT(b, "}\n") : r;
}

PyDoc_STRVAR(ndjson_row_doc,
"ndjson_row(src, kit) -> str | None\n\n"
"The common case of sniparse.report._ndjson_fast: the ndjson line (newline included) of a\n"
"handshake's instance dict src when it is all ASCII; None to leave src to the Python code.\n"
"kit is (names, keys, column_text, iso): the columns after ts, their ', \"name\": ' texts\n"
"(ASCII str), and the Python functions _json_column_text(i, v) and _iso(ts_ns).");

static PyObject *ndjson_row(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 2 || !PyDict_Check(args[0]) || !PyTuple_CheckExact(args[1]) ||
        PyTuple_GET_SIZE(args[1]) != 4) {
        PyErr_SetString(PyExc_TypeError, "ndjson_row(src, kit): a dict and a 4-tuple");
        return NULL;
    }
    PyObject *kit = args[1];
    PyObject *names = PyTuple_GET_ITEM(kit, 0), *keys = PyTuple_GET_ITEM(kit, 1);
    if (!PyTuple_CheckExact(names) || !PyTuple_CheckExact(keys) ||
        PyTuple_GET_SIZE(keys) != PyTuple_GET_SIZE(names)) {
        PyErr_SetString(PyExc_TypeError, "ndjson_row(): names and keys: tuples of one length");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(keys); i++)
        if (!PyUnicode_CheckExact(PyTuple_GET_ITEM(keys, i)) ||
            !PyUnicode_IS_COMPACT_ASCII(PyTuple_GET_ITEM(keys, i))) {
            PyErr_SetString(PyExc_TypeError, "ndjson_row(): keys must be ASCII str");
            return NULL;
        }
    if (row_str_ts_ns == NULL) {
        row_str_ts_ns = PyUnicode_InternFromString("ts_ns");
        if (row_str_ts_ns == NULL)
            return NULL;
    }
    row_buf b;
    b.data = b.stack;
    b.len = 0;
    b.cap = (Py_ssize_t)sizeof(b.stack);
    int r = row_fill(&b, args[0], names, keys, PyTuple_GET_ITEM(kit, 2),
                     PyTuple_GET_ITEM(kit, 3));
    PyObject *result = NULL;
    if (r == ROW_DECLINE) {
        result = Py_NewRef(Py_None);
    } else if (r == ROW_OK) {
        result = PyUnicode_New(b.len, 127);
        if (result != NULL)
            memcpy(PyUnicode_1BYTE_DATA(result), b.data, (size_t)b.len);
    }
    if (b.data != b.stack)
        PyMem_Free(b.data);
    return result;
}

static PyMethodDef methods[] = {
    {"scan_pcap", (PyCFunction)(void (*)(void))scan_pcap, METH_FASTCALL, scan_pcap_doc},
    {"scan_pcapng", (PyCFunction)(void (*)(void))scan_pcapng, METH_FASTCALL, scan_pcapng_doc},
    {"scan_pcap_batch", (PyCFunction)(void (*)(void))scan_pcap_batch, METH_FASTCALL,
     scan_pcap_batch_doc},
    {"scan_pcapng_batch", (PyCFunction)(void (*)(void))scan_pcapng_batch, METH_FASTCALL,
     scan_pcapng_batch_doc},
    {"segment", (PyCFunction)(void (*)(void))segment, METH_FASTCALL, segment_doc},
    {"segment_key", (PyCFunction)(void (*)(void))segment_key, METH_FASTCALL, segment_key_doc},
    {"client_hello_fields", (PyCFunction)(void (*)(void))client_hello_fields, METH_FASTCALL,
     client_hello_fields_doc},
    {"new_record", (PyCFunction)(void (*)(void))new_record, METH_FASTCALL, new_record_doc},
    {"server_reaction", (PyCFunction)(void (*)(void))server_reaction, METH_FASTCALL,
     server_reaction_doc},
    {"ndjson_row", (PyCFunction)(void (*)(void))ndjson_row, METH_FASTCALL, ndjson_row_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "sniparse._speedups",
    "Optional C speedups for sniparse (see sniparse._fastpath).",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC PyInit__speedups(void) {
    if (str_present == NULL) {
        str_present = PyUnicode_InternFromString("present");
        str_absent = PyUnicode_InternFromString("absent");
        str_empty = PyUnicode_InternFromString("empty");
        if (str_present == NULL || str_absent == NULL || str_empty == NULL)
            return NULL;
    }

    return PyModule_Create(&module);
}
