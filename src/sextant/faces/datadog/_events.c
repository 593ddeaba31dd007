/* Native translation of a `POST /api/v2/prodlytics` body: parse the JSON once, check the standard fields
 * of each server-side event, and flatten its attributes straight to the JSON text the store keeps,
 * without building Python objects for the document.
 *
 * It is a fast path, not a second implementation of the rules: whatever it is not sure of (any invalid
 * event, escapes in keys, exponents, integers past 18 digits, duplicate keys, nesting past max_depth,
 * lone surrogate escapes, invalid UTF-8) makes it answer None, and the Python path
 * (server_side_events.ServerSideEvents) decides, with its error messages. For what it does accept, it
 * must give what the Python path gives: the same standard fields and attributes with the same paths in
 * the same order and equal values (tests/faces/datadog/test_native_events.py checks this on generated
 * documents). Numbers are kept as they were written (`1.50` stays `1.50`; the Python path would store
 * `1.5`): the same JSON value.
 *
 * translate_request does the same for a whole intake request of the usual kind (a key already found valid,
 * a plain body in one message), so that such a request costs the event loop one call between receiving
 * its body and handing its batch to the writer.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define FALLBACK 1 /* not an error: "let the Python path decide" */
/* Keys per object this path handles (duplicates are looked for among them); wider objects go the Python
 * way. */
#define MAX_KEYS 64

typedef struct {
    char *data;
    size_t len, cap;
} Buf;

static int
buf_reserve(Buf *b, size_t extra)
{
    if (b->len + extra <= b->cap) {
        return 0;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra) {
        cap *= 2;
    }
    char *data = PyMem_Realloc(b->data, cap);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

static int
buf_put(Buf *b, const char *s, size_t n)
{
    if (buf_reserve(b, n) < 0) {
        return -1;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    return 0;
}

static int
buf_byte(Buf *b, char c)
{
    return buf_put(b, &c, 1);
}

/* A value recorded at a path: its JSON text in Parser.values, and the next value of the same path. */
typedef struct {
    size_t off, len;
    Py_ssize_t next;
} Value;

typedef struct {
    size_t path_off, path_len; /* in Parser.paths */
    uint64_t hash;
    Py_ssize_t first, last; /* values, -1 for none */
    int is_list;
} Entry;

/* The standard fields of one event, as spans of the body (strings without escapes). */
typedef struct {
    const char *app, *name, *usr, *account, *session;
    size_t app_len, name_len, usr_len, account_len, session_len;
    int has_type, has_usr, has_account, has_session, has_date;
    long long date;
} Standard;

typedef struct {
    const char *p, *end;
    long max_depth;
    Buf path;   /* the path being walked */
    Buf paths;  /* every path of the event's table */
    Buf values; /* every value's JSON text */
    Buf out;    /* the attribute object being written */
    Value *vals;
    Py_ssize_t nvals, capvals;
    Entry *entries;
    Py_ssize_t nentries, capentries;
    Py_ssize_t *index; /* open addressing over entries, -1 empty */
    size_t index_size;
    Standard std;
} Parser;

static const char *const STANDARD_PATHS[] = {"application.id", "event.name", "type", "usr.id", "account.id",
                                             "session.id"};

static int
is_standard_path(const char *s, size_t n)
{
    for (size_t i = 0; i < sizeof(STANDARD_PATHS) / sizeof(STANDARD_PATHS[0]); i++) {
        if (strlen(STANDARD_PATHS[i]) == n && memcmp(STANDARD_PATHS[i], s, n) == 0) {
            return 1;
        }
    }
    return 0;
}

static uint64_t
hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    }
    return h;
}

static void
skip_ws(Parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\n' || *ps->p == '\r' || *ps->p == '\t')) {
        ps->p++;
    }
}

/* After an object's entry or an array's item: MORE past a comma, CLOSED past `close`, else FALLBACK. */
enum { MORE = 0, CLOSED = 2 };

static int
after_item(Parser *ps, char close)
{
    skip_ws(ps);
    if (ps->p < ps->end && (*ps->p == ',' || *ps->p == close)) {
        return *ps->p++ == ',' ? MORE : CLOSED;
    }
    return FALLBACK;
}

static int
hex4(const char *s, unsigned *cp)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9') {
            v |= (unsigned)(c - '0');
        }
        else if (c >= 'a' && c <= 'f') {
            v |= (unsigned)(c - 'a' + 10);
        }
        else if (c >= 'A' && c <= 'F') {
            v |= (unsigned)(c - 'A' + 10);
        }
        else {
            return -1;
        }
    }
    *cp = v;
    return 0;
}

/* Well-formed UTF-8 (no overlongs, no surrogates, at most U+10FFFF), as Python's decoder requires. */
static int
valid_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        unsigned cp;
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
            cp = c & 0x1F;
        }
        else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            cp = c & 0x0F;
        }
        else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            cp = c & 0x07;
        }
        else {
            return 0;
        }
        if (i + need >= n) {
            return 0;
        }
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80) {
                return 0;
            }
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((need == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (need == 3 && (cp < 0x10000 || cp > 0x10FFFF))) {
            return 0;
        }
        i += need + 1;
    }
    return 1;
}

/* A string token: its raw content (between the quotes) and whether it holds escapes. */
static int
scan_string(Parser *ps, const char **start, size_t *len, int *escaped)
{
    const char *p = ps->p + 1; /* past the opening quote */
    int esc = 0, high = 0;
    while (p < ps->end) {
        unsigned char c = (unsigned char)*p;
        if (c == '"') {
            *start = ps->p + 1;
            *len = (size_t)(p - *start);
            *escaped = esc;
            ps->p = p + 1;
            if (high && !valid_utf8((const unsigned char *)*start, *len)) {
                return FALLBACK;
            }
            return 0;
        }
        if (c < 0x20) {
            return FALLBACK;
        }
        if (c >= 0x80) {
            high = 1;
        }
        if (c == '\\') {
            esc = 1;
            if (p + 1 >= ps->end) {
                return FALLBACK;
            }
            char e = p[1];
            if (e == 'u') {
                unsigned cp, low;
                if (p + 6 > ps->end || hex4(p + 2, &cp) < 0 || (cp >= 0xDC00 && cp <= 0xDFFF)) {
                    return FALLBACK;
                }
                p += 6;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    /* A character past U+FFFF, as a surrogate pair (how ASCII-only encoders send it); a
                     * lone surrogate is no character. */
                    if (p + 6 > ps->end || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, &low) < 0 || low < 0xDC00 ||
                        low > 0xDFFF) {
                        return FALLBACK;
                    }
                    p += 6;
                }
                continue;
            }
            if (!strchr("\"\\/bfnrt", e) || e == '\0') {
                return FALLBACK;
            }
            p += 2;
            continue;
        }
        p++;
    }
    return FALLBACK;
}

/* A string as the store writes it: escapes decoded, then only what JSON requires escaped again. */
static int
put_string(Buf *b, const char *s, size_t n, int escaped)
{
    if (buf_byte(b, '"') < 0) {
        return -1;
    }
    if (!escaped) {
        if (buf_put(b, s, n) < 0) {
            return -1;
        }
        return buf_byte(b, '"');
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c != '\\') {
            if (buf_byte(b, c) < 0) {
                return -1;
            }
            continue;
        }
        char e = s[++i];
        unsigned cp;
        switch (e) {
        case '"':
        case '\\':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't': {
            char pair[2] = {'\\', e};
            if (buf_put(b, pair, 2) < 0) {
                return -1;
            }
            break;
        }
        case '/':
            if (buf_byte(b, '/') < 0) {
                return -1;
            }
            break;
        default: /* 'u', checked by scan_string */
            hex4(s + i + 1, &cp);
            i += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned low;
                hex4(s + i + 3, &low); /* the pair's second half, checked by scan_string */
                i += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            }
            char tmp[8];
            size_t k = 0;
            if (cp == '"' || cp == '\\') {
                tmp[k++] = '\\';
                tmp[k++] = (char)cp;
            }
            else if (cp < 0x20) {
                static const char digits[] = "0123456789abcdef";
                memcpy(tmp, "\\u00", 4);
                tmp[4] = digits[cp >> 4];
                tmp[5] = digits[cp & 15];
                k = 6;
            }
            else if (cp < 0x80) {
                tmp[k++] = (char)cp;
            }
            else if (cp < 0x800) {
                tmp[k++] = (char)(0xC0 | (cp >> 6));
                tmp[k++] = (char)(0x80 | (cp & 0x3F));
            }
            else if (cp < 0x10000) {
                tmp[k++] = (char)(0xE0 | (cp >> 12));
                tmp[k++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                tmp[k++] = (char)(0x80 | (cp & 0x3F));
            }
            else {
                tmp[k++] = (char)(0xF0 | (cp >> 18));
                tmp[k++] = (char)(0x80 | ((cp >> 12) & 0x3F));
                tmp[k++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                tmp[k++] = (char)(0x80 | (cp & 0x3F));
            }
            if (buf_put(b, tmp, k) < 0) {
                return -1;
            }
        }
    }
    return buf_byte(b, '"');
}

/* A number token, accepted only where its text is a JSON number the Python path stores as the same
 * value: no exponent, and integers within 18 digits (int64 whatever their value). */
static int
scan_number(Parser *ps, const char **start, size_t *len, int *integer)
{
    const char *p = ps->p;
    if (p < ps->end && *p == '-') {
        p++;
    }
    if (p >= ps->end) {
        return FALLBACK;
    }
    const char *digits = p;
    if (*p == '0') {
        p++;
    }
    else if (*p >= '1' && *p <= '9') {
        while (p < ps->end && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    else {
        return FALLBACK;
    }
    size_t int_digits = (size_t)(p - digits);
    int is_int = 1;
    if (p < ps->end && *p == '.') {
        p++;
        const char *frac = p;
        while (p < ps->end && *p >= '0' && *p <= '9') {
            p++;
        }
        if (p == frac) {
            return FALLBACK;
        }
        is_int = 0;
    }
    if (p < ps->end && (*p == 'e' || *p == 'E')) {
        return FALLBACK;
    }
    if (is_int && int_digits > 18) {
        return FALLBACK;
    }
    *start = ps->p;
    *len = (size_t)(p - ps->p);
    *integer = is_int;
    ps->p = p;
    return 0;
}

static int
index_rebuild(Parser *ps, size_t size)
{
    Py_ssize_t *index = PyMem_Realloc(ps->index, size * sizeof(Py_ssize_t));
    if (index == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    ps->index = index;
    ps->index_size = size;
    for (size_t i = 0; i < size; i++) {
        index[i] = -1;
    }
    for (Py_ssize_t e = 0; e < ps->nentries; e++) {
        size_t slot = (size_t)ps->entries[e].hash & (size - 1);
        while (index[slot] >= 0) {
            slot = (slot + 1) & (size - 1);
        }
        index[slot] = e;
    }
    return 0;
}

/* The entry of the current path, or -1 (with *slot where a new one goes). */
static Py_ssize_t
find_entry(Parser *ps, uint64_t hash, size_t *slot)
{
    size_t mask = ps->index_size - 1, i = (size_t)hash & mask;
    while (ps->index[i] >= 0) {
        Entry *e = &ps->entries[ps->index[i]];
        if (e->hash == hash && e->path_len == ps->path.len &&
            memcmp(ps->paths.data + e->path_off, ps->path.data, ps->path.len) == 0) {
            return ps->index[i];
        }
        i = (i + 1) & mask;
    }
    *slot = i;
    return -1;
}

static Py_ssize_t
new_entry(Parser *ps, uint64_t hash, size_t slot)
{
    if (ps->nentries == ps->capentries) {
        Py_ssize_t cap = ps->capentries ? ps->capentries * 2 : 32;
        Entry *entries = PyMem_Realloc(ps->entries, (size_t)cap * sizeof(Entry));
        if (entries == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        ps->entries = entries;
        ps->capentries = cap;
    }
    Py_ssize_t id = ps->nentries++;
    Entry *e = &ps->entries[id];
    e->path_off = ps->paths.len;
    e->path_len = ps->path.len;
    e->hash = hash;
    e->first = e->last = -1;
    e->is_list = 0;
    if (buf_put(&ps->paths, ps->path.data, ps->path.len) < 0) {
        return -1;
    }
    ps->index[slot] = id;
    /* Kept at most half full. */
    if ((size_t)ps->nentries * 2 > ps->index_size && index_rebuild(ps, ps->index_size * 2) < 0) {
        return -1;
    }
    return id;
}

static Py_ssize_t
entry_for_path(Parser *ps, int *created)
{
    uint64_t hash = hash_bytes(ps->path.data, ps->path.len);
    size_t slot = 0;
    Py_ssize_t id = find_entry(ps, hash, &slot);
    *created = id < 0;
    return id >= 0 ? id : new_entry(ps, hash, slot);
}

/* The value just written at the end of ps->values (from `off`), put at the current path: as put() of
 * _flatten.c, a path seen twice keeps every value, and a path reached through an array holds a list. */
static int
put_value(Parser *ps, size_t off, int from_array)
{
    int created;
    Py_ssize_t id = entry_for_path(ps, &created);
    if (id < 0) {
        return -1;
    }
    if (ps->nvals == ps->capvals) {
        Py_ssize_t cap = ps->capvals ? ps->capvals * 2 : 64;
        Value *vals = PyMem_Realloc(ps->vals, (size_t)cap * sizeof(Value));
        if (vals == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        ps->vals = vals;
        ps->capvals = cap;
    }
    Py_ssize_t v = ps->nvals++;
    ps->vals[v] = (Value){.off = off, .len = ps->values.len - off, .next = -1};
    Entry *e = &ps->entries[id];
    if (created) {
        e->is_list = from_array;
        e->first = v;
    }
    else {
        e->is_list = 1;
        if (e->last >= 0) {
            ps->vals[e->last].next = v;
        }
        else {
            e->first = v;
        }
    }
    e->last = v;
    return 0;
}

static int parse_value(Parser *ps, long depth, int in_array, int entry_of_object, int top_key);

/* Which standard field a top-level key holds: 0 none, else its number. */
enum { TOP_NONE, TOP_APPLICATION, TOP_EVENT, TOP_TYPE, TOP_USR, TOP_ACCOUNT, TOP_SESSION, TOP_DATE };

static int
top_key_of(const char *k, size_t n)
{
#define IS(lit) (n == sizeof(lit) - 1 && memcmp(k, lit, n) == 0)
    if (IS("application")) {
        return TOP_APPLICATION;
    }
    if (IS("event")) {
        return TOP_EVENT;
    }
    if (IS("type")) {
        return TOP_TYPE;
    }
    if (IS("usr")) {
        return TOP_USR;
    }
    if (IS("account")) {
        return TOP_ACCOUNT;
    }
    if (IS("session")) {
        return TOP_SESSION;
    }
    if (IS("date")) {
        return TOP_DATE;
    }
#undef IS
    return TOP_NONE;
}

/* A standard field's string, taken where the Python path reads it (item[parent][field]). */
static int
capture(Parser *ps, int top_key, const char *key, size_t key_len, const char *s, size_t n, int escaped)
{
    const char *want = top_key == TOP_EVENT ? "name" : "id";
    if (strlen(want) != key_len || memcmp(key, want, key_len) != 0) {
        return 0;
    }
    if (escaped || n == 0) {
        return FALLBACK;
    }
    Standard *st = &ps->std;
    switch (top_key) {
    case TOP_APPLICATION:
        st->app = s, st->app_len = n;
        break;
    case TOP_EVENT:
        st->name = s, st->name_len = n;
        break;
    case TOP_USR:
        st->usr = s, st->usr_len = n;
        break;
    case TOP_ACCOUNT:
        st->account = s, st->account_len = n;
        break;
    case TOP_SESSION:
        st->session = s, st->session_len = n;
        break;
    }
    return 0;
}

/* An object. `top_key` is the standard field it is the value of, for the objects of the top level's
 * application/event/usr/account/session keys; -1 for the event object itself. */
static int
parse_object(Parser *ps, long depth, int in_array, int top_key)
{
    if (depth > ps->max_depth) {
        return FALLBACK;
    }
    ps->p++; /* '{' */
    size_t prefix_len = ps->path.len;
    /* The keys of this object, to find a duplicate (the Python path keeps the last; this one would keep
     * both): spans of the body, compared only among keys of equal hash. */
    struct {
        const char *s;
        size_t n;
        uint64_t h;
    } keys_small[MAX_KEYS];
    int nkeys = 0, rc;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
        return 0;
    }
    for (;;) {
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != '"') {
            return FALLBACK;
        }
        const char *key;
        size_t key_len;
        int escaped;
        if ((rc = scan_string(ps, &key, &key_len, &escaped)) != 0) {
            return rc;
        }
        if (escaped) {
            return FALLBACK;
        }
        uint64_t h = hash_bytes(key, key_len);
        for (int i = 0; i < nkeys; i++) {
            if (keys_small[i].h == h && keys_small[i].n == key_len && memcmp(keys_small[i].s, key, key_len) == 0) {
                return FALLBACK;
            }
        }
        if (nkeys == MAX_KEYS) {
            return FALLBACK; /* wide objects are rare in events: the Python path has no such bound */
        }
        keys_small[nkeys].s = key, keys_small[nkeys].n = key_len, keys_small[nkeys].h = h;
        nkeys++;
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != ':') {
            return FALLBACK;
        }
        ps->p++;
        skip_ws(ps);
        /* f"{prefix}.{key}" if prefix else key */
        ps->path.len = prefix_len;
        if (prefix_len && buf_byte(&ps->path, '.') < 0) {
            return -1;
        }
        if (buf_put(&ps->path, key, key_len) < 0) {
            return -1;
        }
        int child_top = TOP_NONE;
        if (top_key == -1) {
            child_top = top_key_of(key, key_len);
            if (child_top == TOP_TYPE) {
                ps->std.has_type = 1;
                if (ps->p + 8 > ps->end || memcmp(ps->p, "\"server\"", 8) != 0) {
                    return FALLBACK;
                }
            }
            else if (child_top == TOP_USR) {
                ps->std.has_usr = 1;
            }
            else if (child_top == TOP_ACCOUNT) {
                ps->std.has_account = 1;
            }
            else if (child_top == TOP_SESSION) {
                ps->std.has_session = 1;
            }
            if (child_top != TOP_NONE && child_top != TOP_TYPE && child_top != TOP_DATE &&
                (ps->p >= ps->end || *ps->p != '{')) {
                return FALLBACK; /* a standard parent that is not an object: the Python path says why */
            }
        }
        if (top_key > 0 && ps->p < ps->end && *ps->p == '"') {
            /* A string under a standard parent: the id or name, maybe. */
            const char *s;
            size_t n;
            int esc;
            const char *at = ps->p;
            if ((rc = scan_string(ps, &s, &n, &esc)) != 0) {
                return rc;
            }
            if ((rc = capture(ps, top_key, key, key_len, s, n, esc)) != 0) {
                return rc;
            }
            ps->p = at;
        }
        else if (top_key > 0) {
            const char *want = top_key == TOP_EVENT ? "name" : "id";
            if (strlen(want) == key_len && memcmp(key, want, key_len) == 0) {
                return FALLBACK; /* an id or name that is not a string */
            }
        }
        if (child_top == TOP_DATE) {
            const char *s;
            size_t n;
            int integer;
            const char *at = ps->p;
            if ((rc = scan_number(ps, &s, &n, &integer)) != 0 || !integer) {
                return FALLBACK;
            }
            char digits[24];
            memcpy(digits, s, n);
            digits[n] = '\0';
            ps->std.has_date = 1;
            ps->std.date = strtoll(digits, NULL, 10);
            ps->p = at;
        }
        if ((rc = parse_value(ps, depth, in_array, 1, child_top)) != 0) {
            return rc;
        }
        if ((rc = after_item(ps, '}')) != MORE) {
            ps->path.len = prefix_len;
            return rc == CLOSED ? 0 : rc;
        }
    }
}

static int
parse_array(Parser *ps, long depth)
{
    if (depth > ps->max_depth) {
        return FALLBACK;
    }
    ps->p++; /* '[' */
    skip_ws(ps);
    int rc;
    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
        int created;
        Py_ssize_t id = entry_for_path(ps, &created);
        if (id < 0) {
            return -1;
        }
        if (created) {
            ps->entries[id].is_list = 1;
        }
        return 0;
    }
    for (;;) {
        skip_ws(ps);
        if ((rc = parse_value(ps, depth, 1, 0, TOP_NONE)) != 0) {
            return rc;
        }
        if ((rc = after_item(ps, ']')) != MORE) {
            return rc == CLOSED ? 0 : rc;
        }
    }
}

/* A value at the current path. `depth` is that of the object or array holding it; `entry_of_object`
 * says whether it is an object's entry (whose scalars at standard paths are left out) or an array's
 * element (whose are not). */
static int
parse_value(Parser *ps, long depth, int in_array, int entry_of_object, int top_key)
{
    if (ps->p >= ps->end) {
        return FALLBACK;
    }
    char c = *ps->p;
    if (c == '{') {
        size_t keep = ps->path.len;
        int rc = parse_object(ps, depth + 1, in_array, top_key > 0 && !in_array ? top_key : TOP_NONE);
        ps->path.len = keep;
        return rc;
    }
    if (c == '[') {
        return parse_array(ps, depth + 1);
    }
    size_t off = ps->values.len;
    int rc;
    if (c == '"') {
        const char *s;
        size_t n;
        int escaped;
        if ((rc = scan_string(ps, &s, &n, &escaped)) != 0) {
            return rc;
        }
        if (entry_of_object && is_standard_path(ps->path.data, ps->path.len)) {
            return 0;
        }
        if (put_string(&ps->values, s, n, escaped) < 0) {
            return -1;
        }
    }
    else {
        const char *s;
        size_t n;
        if (c == 't' || c == 'f' || c == 'n') {
            const char *lit = c == 't' ? "true" : c == 'f' ? "false" : "null";
            n = strlen(lit);
            if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, lit, n) != 0) {
                return FALLBACK;
            }
            s = ps->p;
            ps->p += n;
        }
        else {
            int integer;
            if ((rc = scan_number(ps, &s, &n, &integer)) != 0) {
                return rc;
            }
        }
        if (entry_of_object && is_standard_path(ps->path.data, ps->path.len)) {
            return 0;
        }
        if (buf_put(&ps->values, s, n) < 0) {
            return -1;
        }
    }
    return put_value(ps, off, in_array);
}

static PyObject *
span_str(const char *s, size_t n)
{
    return PyUnicode_DecodeUTF8(s, (Py_ssize_t)n, NULL);
}

static PyObject *
optional_str(int present, const char *s, size_t n)
{
    return present ? span_str(s, n) : Py_NewRef(Py_None);
}

/* The attribute object of the event just parsed, as JSON text; its list paths go to `array_paths`. */
static PyObject *
write_attributes(Parser *ps, PyObject *array_paths)
{
    Buf *out = &ps->out;
    out->len = 0;
    if (buf_byte(out, '{') < 0) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < ps->nentries; i++) {
        Entry *e = &ps->entries[i];
        const char *path = ps->paths.data + e->path_off;
        if (i && buf_byte(out, ',') < 0) {
            return NULL;
        }
        /* Paths are keys as sent, joined by dots: keys with escapes went the Python way. */
        if (buf_byte(out, '"') < 0 || buf_put(out, path, e->path_len) < 0 || buf_put(out, "\":", 2) < 0) {
            return NULL;
        }
        if (e->is_list) {
            PyObject *p = span_str(path, e->path_len);
            if (p == NULL || PySet_Add(array_paths, p) < 0) {
                Py_XDECREF(p);
                return NULL;
            }
            Py_DECREF(p);
            if (buf_byte(out, '[') < 0) {
                return NULL;
            }
        }
        for (Py_ssize_t v = e->first; v >= 0; v = ps->vals[v].next) {
            if (v != e->first && buf_byte(out, ',') < 0) {
                return NULL;
            }
            if (buf_put(out, ps->values.data + ps->vals[v].off, ps->vals[v].len) < 0) {
                return NULL;
            }
        }
        if (e->is_list && buf_byte(out, ']') < 0) {
            return NULL;
        }
    }
    if (buf_byte(out, '}') < 0) {
        return NULL;
    }
    return span_str(out->data, out->len);
}

enum { COL_TIME, COL_NAME, COL_APP, COL_USR, COL_ACCOUNT, COL_SESSION, COL_ATTRIBUTES, NCOLS };
#define UNKNOWN_APP 3 /* an application id not in Context.apps: the caller checks it and asks again */

/* What an event is checked against: the applications known to be this organization's (the id as sent ->
 * the id as stored), and the accepted window of event times. */
typedef struct {
    PyObject *apps;
    PyObject *now; /* the receive time, an int: the time of events without a date */
    long long earliest, latest;
    /* The last application looked up, reused while events name the same one, as a batch's nearly always do. */
    const char *last_app;
    size_t last_app_len;
    PyObject *last_stored;     /* borrowed from apps */
    PyObject *unknown_app;     /* set with UNKNOWN_APP */
} Context;

static PyObject *
stored_application(Context *cx, const char *id, size_t len, int *rc)
{
    if (cx->last_stored != NULL && len == cx->last_app_len && memcmp(id, cx->last_app, len) == 0) {
        return cx->last_stored;
    }
    PyObject *key = span_str(id, len);
    if (key == NULL) {
        *rc = -1;
        return NULL;
    }
    PyObject *stored = PyDict_GetItemWithError(cx->apps, key);
    if (stored == NULL) {
        if (PyErr_Occurred()) {
            *rc = -1;
            Py_DECREF(key);
        }
        else {
            *rc = UNKNOWN_APP;
            Py_XSETREF(cx->unknown_app, key);
        }
        return NULL;
    }
    Py_DECREF(key);
    cx->last_app = id;
    cx->last_app_len = len;
    cx->last_stored = stored;
    return stored;
}

/* One event: 0 and its row appended to the columns, FALLBACK, UNKNOWN_APP, or -1 with an exception. */
static int
parse_event(Parser *ps, Context *cx, PyObject **cols, PyObject *array_paths)
{
    skip_ws(ps);
    if (ps->p >= ps->end || *ps->p != '{') {
        return FALLBACK;
    }
    memset(&ps->std, 0, sizeof(ps->std));
    ps->path.len = ps->paths.len = ps->values.len = 0;
    ps->nvals = ps->nentries = 0;
    if (index_rebuild(ps, 64) < 0) {
        return -1;
    }
    int rc = parse_object(ps, 1, 0, -1);
    if (rc != 0) {
        return rc;
    }
    Standard *st = &ps->std;
    if (!st->app || !st->name || !st->has_type || (st->has_usr && !st->usr) || (st->has_account && !st->account) ||
        (st->has_session && !st->session) || !(st->has_usr || st->has_account || st->has_session)) {
        return FALLBACK;
    }
    if (st->has_date && (st->date < cx->earliest || st->date > cx->latest)) {
        return FALLBACK; /* the Python path says which bound */
    }
    PyObject *app = stored_application(cx, st->app, st->app_len, &rc);
    if (app == NULL) {
        return rc;
    }
    PyObject *row[NCOLS] = {
        st->has_date ? PyLong_FromLongLong(st->date) : Py_NewRef(cx->now),
        span_str(st->name, st->name_len),
        Py_NewRef(app),
        optional_str(st->has_usr, st->usr, st->usr_len),
        optional_str(st->has_account, st->account, st->account_len),
        optional_str(st->has_session, st->session, st->session_len),
        write_attributes(ps, array_paths),
    };
    for (int i = 0; i < NCOLS; i++) {
        if (row[i] == NULL || (rc == 0 && PyList_Append(cols[i], row[i]) < 0)) {
            rc = -1;
        }
        Py_XDECREF(row[i]);
    }
    return rc;
}

static void
parser_free(Parser *ps)
{
    PyMem_Free(ps->path.data);
    PyMem_Free(ps->paths.data);
    PyMem_Free(ps->values.data);
    PyMem_Free(ps->out.data);
    PyMem_Free(ps->vals);
    PyMem_Free(ps->entries);
    PyMem_Free(ps->index);
}

/* The events of a body as a tuple of columns and the set of list paths; None when the Python path must
 * decide; the unknown application id (a str) when one must be checked first. */
static PyObject *
translate_events(const char *body, Py_ssize_t size, long max_depth, Context *cx)
{
    Parser ps = {0};
    ps.p = body;
    ps.end = body + size;
    ps.max_depth = max_depth;
    PyObject *cols[NCOLS] = {NULL};
    PyObject *array_paths = PySet_New(NULL), *result = NULL;
    int rc = array_paths == NULL ? -1 : 0;
    for (int i = 0; i < NCOLS && rc == 0; i++) {
        if ((cols[i] = PyList_New(0)) == NULL) {
            rc = -1;
        }
    }
    if (rc == 0) {
        skip_ws(&ps);
        if (ps.p < ps.end && *ps.p == '[') {
            ps.p++;
            while ((rc = parse_event(&ps, cx, cols, array_paths)) == 0 && (rc = after_item(&ps, ']')) == MORE) {
            }
            if (rc == CLOSED) {
                rc = 0;
            }
        }
        else {
            rc = parse_event(&ps, cx, cols, array_paths);
        }
        if (rc == 0) {
            skip_ws(&ps);
            if (ps.p != ps.end) {
                rc = FALLBACK;
            }
        }
    }
    if (rc == 0) {
        result = PyTuple_Pack(NCOLS + 1, cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6], array_paths);
    }
    else if (rc == FALLBACK) {
        result = Py_NewRef(Py_None);
    }
    else if (rc == UNKNOWN_APP) {
        result = Py_NewRef(cx->unknown_app);
    }
    Py_CLEAR(cx->unknown_app);
    for (int i = 0; i < NCOLS; i++) {
        Py_XDECREF(cols[i]);
    }
    Py_XDECREF(array_paths);
    parser_free(&ps);
    return result;
}

static int
context_of(Context *cx, PyObject *apps, PyObject *now, PyObject *earliest, PyObject *latest)
{
    memset(cx, 0, sizeof(*cx));
    if (!PyDict_Check(apps) || !PyLong_Check(now)) {
        PyErr_SetString(PyExc_TypeError, "apps must be a dict and now an int");
        return -1;
    }
    cx->apps = apps;
    cx->now = now;
    cx->earliest = PyLong_AsLongLong(earliest);
    cx->latest = PyLong_AsLongLong(latest);
    return PyErr_Occurred() ? -1 : 0;
}

PyDoc_STRVAR(translate_doc,
             "translate(body, max_depth, apps, now, earliest, latest, /)\n--\n\n"
             "The events of a prodlytics body as columns (times, names, stored application ids, usr ids, "
             "account ids, session ids, attribute JSON texts) and the set of attribute paths holding a list. "
             "`apps` maps the application ids known to be the caller's to their stored ids; an event without "
             "a date gets `now`, one with a date outside [earliest, latest] goes the Python way. None when "
             "the Python path must decide; an application id (str) that is not in `apps`, to be checked "
             "before asking again.");

static PyObject *
translate(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6 || !PyBytes_Check(args[0]) || !PyLong_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "translate(body: bytes, max_depth: int, apps, now, earliest, latest)");
        return NULL;
    }
    long max_depth = PyLong_AsLong(args[1]);
    Context cx;
    if ((max_depth == -1 && PyErr_Occurred()) || context_of(&cx, args[2], args[3], args[4], args[5]) < 0) {
        return NULL;
    }
    return translate_events(PyBytes_AS_STRING(args[0]), PyBytes_GET_SIZE(args[0]), max_depth, &cx);
}

static PyObject *str_type, *str_body, *str_more_body, *str_http_request;

static int
bytes_equal(PyObject *b, const char *s, Py_ssize_t n)
{
    return PyBytes_Check(b) && PyBytes_GET_SIZE(b) == n && memcmp(PyBytes_AS_STRING(b), s, (size_t)n) == 0;
}

PyDoc_STRVAR(translate_request_doc,
             "translate_request(headers, message, routes, now, earliest, latest, max_bytes, max_depth, /)\n--\n\n"
             "A whole intake request in one call, when it is the usual kind: its DD-API-KEY (the raw header "
             "bytes) is in `routes`, which maps it to (organization id, that organization's `apps` as for "
             "translate), its body is the first and only ASGI message, at most `max_bytes`, without a "
             "Content-Encoding, and translate accepts it. Then (organization id, translate's columns); "
             "otherwise None, and the caller takes the general path.");

static PyObject *
translate_request(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 8 || !PyDict_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "translate_request(headers, message, routes: dict, now, earliest, latest, "
                                         "max_bytes, max_depth)");
        return NULL;
    }
    if (!PyList_Check(args[0]) || !PyDict_Check(args[1])) {
        Py_RETURN_NONE; /* not the shapes uvicorn gives: the general path reads them */
    }
    PyObject *headers = args[0], *message = args[1], *api_key = NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(headers); i++) {
        PyObject *pair = PyList_GET_ITEM(headers, i);
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
            Py_RETURN_NONE;
        }
        PyObject *name = PyTuple_GET_ITEM(pair, 0), *value = PyTuple_GET_ITEM(pair, 1);
        if (bytes_equal(name, "dd-api-key", 10)) {
            if (api_key == NULL) {
                api_key = value;
            }
        }
        else if (bytes_equal(name, "content-encoding", 16) && !bytes_equal(value, "", 0) &&
                 !bytes_equal(value, "identity", 8)) {
            Py_RETURN_NONE;
        }
    }
    if (api_key == NULL || !PyBytes_CheckExact(api_key)) {
        Py_RETURN_NONE;
    }
    PyObject *route = PyDict_GetItemWithError(args[2], api_key);
    if (route == NULL) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    PyObject *type = PyDict_GetItemWithError(message, str_type);
    PyObject *body = type == NULL ? NULL : PyDict_GetItemWithError(message, str_body);
    PyObject *more = body == NULL ? NULL : PyDict_GetItemWithError(message, str_more_body);
    if (PyErr_Occurred()) {
        return NULL;
    }
    Py_ssize_t max_bytes = PyLong_AsSsize_t(args[6]);
    long max_depth = PyLong_AsLong(args[7]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    if (type == NULL || !PyUnicode_Check(type) || PyUnicode_Compare(type, str_http_request) != 0 || body == NULL ||
        !PyBytes_Check(body) || PyBytes_GET_SIZE(body) > max_bytes || (more != NULL && PyObject_IsTrue(more) != 0) ||
        !PyTuple_Check(route) || PyTuple_GET_SIZE(route) != 2) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    Context cx;
    if (context_of(&cx, PyTuple_GET_ITEM(route, 1), args[3], args[4], args[5]) < 0) {
        return NULL;
    }
    PyObject *columns = translate_events(PyBytes_AS_STRING(body), PyBytes_GET_SIZE(body), max_depth, &cx);
    if (columns == NULL || !PyTuple_Check(columns)) {
        if (columns == NULL) {
            return NULL;
        }
        Py_DECREF(columns);
        Py_RETURN_NONE;
    }
    PyObject *result = PyTuple_Pack(2, PyTuple_GET_ITEM(route, 0), columns);
    Py_DECREF(columns);
    return result;
}

static PyMethodDef methods[] = {
    {"translate", (PyCFunction)(void (*)(void))translate, METH_FASTCALL, translate_doc},
    {"translate_request", (PyCFunction)(void (*)(void))translate_request, METH_FASTCALL, translate_request_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "sextant.faces.datadog._events",
    .m_doc = "Native fast path for server-side event bodies (see server_side_events.py).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__events(void)
{
    str_type = PyUnicode_InternFromString("type");
    str_body = PyUnicode_InternFromString("body");
    str_more_body = PyUnicode_InternFromString("more_body");
    str_http_request = PyUnicode_InternFromString("http.request");
    if (str_type == NULL || str_body == NULL || str_more_body == NULL || str_http_request == NULL) {
        return NULL;
    }
    return PyModule_Create(&module_def);
}
