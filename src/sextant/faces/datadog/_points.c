/* Datadog point arrays parsed straight from the request's JSON bytes into flat int64/float64 buffers.
 *
 * The metric intakes decode a payload with msgspec, keeping each series' "points" as raw JSON; these
 * functions turn that raw text into the batch's run buffers without creating a Python object per point,
 * which is most of what the intake costs per sample. They handle the common, well-formed case only:
 * anything else (a value that is not a plain number, an unknown key, a time outside the accepted window,
 * a non-finite value, a malformed array) makes them return -1 with the buffers as they were, and the
 * caller decodes that series the slow way, which also gives the precise error message.
 *
 *   parse_pairs(times, values, raw, floor_ms, ceiling_ms) -> int
 *       v1 points: [[epoch_seconds, value], ...]; seconds may have a fraction; ms = round-half-even
 *       of seconds * 1000, as Python's round(seconds * 1000) gives.
 *   parse_objects(times, values, raw, floor_ms, ceiling_ms) -> int
 *       v2 points: [{"timestamp": epoch_seconds (an integer), "value": number}, ...], keys in any order.
 *
 * `times` and `values` are bytearrays that receive native-order int64 milliseconds and float64 values;
 * the return value is the number of points appended.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *p;
    const char *end;
} Cursor;

static void
skip_ws(Cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' || *c->p == '\r' || *c->p == '\t')) {
        c->p++;
    }
}

static int
expect(Cursor *c, char ch)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* A JSON number at the cursor. Sets *is_integer when it has neither a fraction nor an exponent.
 * Returns 0 when the text is not a JSON number. */
static int
parse_number(Cursor *c, double *out, int *is_integer, int64_t *as_int)
{
    skip_ws(c);
    const char *start = c->p;
    const char *p = c->p;
    if (p < c->end && *p == '-') {
        p++;
    }
    if (p >= c->end) {
        return 0;
    }
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < c->end && *p >= '0' && *p <= '9') {
            p++;
        }
    } else {
        return 0;
    }
    int integer = 1;
    if (p < c->end && *p == '.') {
        integer = 0;
        p++;
        if (p >= c->end || *p < '0' || *p > '9') {
            return 0;
        }
        while (p < c->end && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    if (p < c->end && (*p == 'e' || *p == 'E')) {
        integer = 0;
        p++;
        if (p < c->end && (*p == '+' || *p == '-')) {
            p++;
        }
        if (p >= c->end || *p < '0' || *p > '9') {
            return 0;
        }
        while (p < c->end && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    size_t len = (size_t)(p - start);
    char text[64];
    if (len >= sizeof(text)) {
        return 0;
    }
    memcpy(text, start, len);
    text[len] = '\0';
    errno = 0;
    if (integer) {
        long long v = strtoll(text, NULL, 10);
        if (errno == ERANGE) {
            return 0;
        }
        *as_int = (int64_t)v;
        *out = (double)v;
    } else {
        *out = strtod(text, NULL);
        *as_int = 0;
    }
    *is_integer = integer;
    c->p = p;
    return 1;
}

/* Append to a bytearray. */
static int
append(PyObject *buffer, const void *data, size_t size)
{
    Py_ssize_t old = PyByteArray_GET_SIZE(buffer);
    if (PyByteArray_Resize(buffer, old + (Py_ssize_t)size) < 0) {
        return 0;
    }
    memcpy(PyByteArray_AS_STRING(buffer) + old, data, size);
    return 1;
}

typedef struct {
    PyObject *times;
    PyObject *values;
    long long floor_ms;
    long long ceiling_ms;
    Py_ssize_t times_size;
    Py_ssize_t values_size;
} Target;

static void
mark(Target *t)
{
    t->times_size = PyByteArray_GET_SIZE(t->times);
    t->values_size = PyByteArray_GET_SIZE(t->values);
}

/* Leave the buffers as they were: -1, "not on the fast path"; -2 when a Python error is set. */
static long
undo(Target *t)
{
    int failed = PyErr_Occurred() != NULL;
    PyByteArray_Resize(t->times, t->times_size);
    PyByteArray_Resize(t->values, t->values_size);
    return failed ? -2 : -1;
}

static int
keep(Target *t, int64_t time_ms, double value)
{
    if (time_ms < t->floor_ms || time_ms > t->ceiling_ms || !isfinite(value)) {
        return 0;
    }
    return append(t->times, &time_ms, sizeof(time_ms)) && append(t->values, &value, sizeof(value));
}

static long
fill_pairs(Target *t, const char *text, Py_ssize_t size)
{
    mark(t);
    Cursor c = {text, text + size};
    long count = 0;
    if (!expect(&c, '[')) {
        return undo(t);
    }
    skip_ws(&c);
    if (c.p < c.end && *c.p == ']') {
        c.p++;
    } else {
        for (;;) {
            double seconds, value;
            int64_t ignored;
            int integer;
            if (!expect(&c, '[') || !parse_number(&c, &seconds, &integer, &ignored) || !expect(&c, ',') ||
                !parse_number(&c, &value, &integer, &ignored) || !expect(&c, ']')) {
                return undo(t);
            }
            double ms = nearbyint(seconds * 1000.0);
            if (!(ms >= -9.2e18 && ms <= 9.2e18) || !keep(t, (int64_t)ms, value)) {
                return undo(t);
            }
            count++;
            skip_ws(&c);
            if (c.p < c.end && *c.p == ',') {
                c.p++;
                continue;
            }
            if (expect(&c, ']')) {
                break;
            }
            return undo(t);
        }
    }
    skip_ws(&c);
    return c.p == c.end ? count : undo(t);
}

/* The key at the cursor, if it is "timestamp" or "value" (1 or 2); 0 for anything else. */
static int
point_key(Cursor *c)
{
    skip_ws(c);
    static const char timestamp[] = "\"timestamp\"";
    static const char value[] = "\"value\"";
    size_t left = (size_t)(c->end - c->p);
    if (left >= sizeof(timestamp) - 1 && memcmp(c->p, timestamp, sizeof(timestamp) - 1) == 0) {
        c->p += sizeof(timestamp) - 1;
        return 1;
    }
    if (left >= sizeof(value) - 1 && memcmp(c->p, value, sizeof(value) - 1) == 0) {
        c->p += sizeof(value) - 1;
        return 2;
    }
    return 0;
}

static long
fill_objects(Target *t, const char *text, Py_ssize_t size)
{
    mark(t);
    Cursor c = {text, text + size};
    long count = 0;
    if (!expect(&c, '[')) {
        return undo(t);
    }
    skip_ws(&c);
    if (c.p < c.end && *c.p == ']') {
        c.p++;
    } else {
        for (;;) {
            int have_time = 0, have_value = 0;
            int64_t seconds = 0;
            double value = 0;
            if (!expect(&c, '{')) {
                return undo(t);
            }
            for (int field = 0; field < 2; field++) {
                int key = point_key(&c);
                double number;
                int64_t as_int;
                int integer;
                if (key == 0 || !expect(&c, ':') || !parse_number(&c, &number, &integer, &as_int)) {
                    return undo(t);
                }
                if (key == 1) {
                    if (have_time || !integer) {
                        return undo(t);
                    }
                    have_time = 1;
                    seconds = as_int;
                } else {
                    if (have_value) {
                        return undo(t);
                    }
                    have_value = 1;
                    value = number;
                }
                if (field == 0 && !expect(&c, ',')) {
                    return undo(t);
                }
            }
            if (!expect(&c, '}')) {
                return undo(t);
            }
            if (seconds > INT64_MAX / 1000 || seconds < INT64_MIN / 1000 || !keep(t, seconds * 1000, value)) {
                return undo(t);
            }
            count++;
            skip_ws(&c);
            if (c.p < c.end && *c.p == ',') {
                c.p++;
                continue;
            }
            if (expect(&c, ']')) {
                break;
            }
            return undo(t);
        }
    }
    skip_ws(&c);
    return c.p == c.end ? count : undo(t);
}

typedef long (*Filler)(Target *, const char *, Py_ssize_t);

static PyObject *
parse_with(PyObject *args, Filler fill)
{
    Target t;
    Py_buffer raw;
    if (!PyArg_ParseTuple(args, "O!O!y*LL", &PyByteArray_Type, &t.times, &PyByteArray_Type, &t.values, &raw,
                          &t.floor_ms, &t.ceiling_ms)) {
        return NULL;
    }
    long n = fill(&t, (const char *)raw.buf, raw.len);
    PyBuffer_Release(&raw);
    return n == -2 ? NULL : PyLong_FromLong(n);
}

static PyObject *
parse_pairs(PyObject *Py_UNUSED(module), PyObject *args)
{
    return parse_with(args, fill_pairs);
}

static PyObject *
parse_objects(PyObject *Py_UNUSED(module), PyObject *args)
{
    return parse_with(args, fill_objects);
}

/* --- whole series ---------------------------------------------------------------------------------- */

static PyObject *s_metric, *s_tags, *s_host, *s_resources, *s_type, *s_interval, *s_unit, *s_points;

/* Attribute of a decoded series; NULL with an error set when it is missing (it never is). */
static PyObject *
attr(PyObject *series, PyObject *name)
{
    return PyObject_GetAttr(series, name);
}

/* One series of a known shape and a known series: its points into the buffers, its header and its
 * registration. 1 when done, 0 when Python must take it, -1 on a Python error. */
static int
take_series(PyObject *series, int version, PyObject *cache, PyObject *kinds, PyObject *org, Target *t,
            PyObject *headers, PyObject *registered)
{
    int result = -1;
    PyObject *metric = NULL, *tags = NULL, *second = NULL, *tags_tuple = NULL, *key = NULL;
    PyObject *type = NULL, *interval = NULL, *unit = NULL, *points = NULL, *interval_ms = NULL;
    PyObject *header = NULL, *reg_key = NULL, *reg_value = NULL;

    if (!(metric = attr(series, s_metric)) || !(tags = attr(series, s_tags))) {
        goto done;
    }
    if (version == 1) {
        if (!(second = attr(series, s_host))) {
            goto done;
        }
    } else {
        PyObject *resources = attr(series, s_resources);
        if (!resources) {
            goto done;
        }
        if (PyList_Check(resources) && PyList_GET_SIZE(resources) > 0) {
            second = PyList_AsTuple(resources);
            Py_DECREF(resources);
            if (!second) {
                goto done;
            }
        } else {
            Py_DECREF(resources);
            second = Py_NewRef(Py_None);
        }
    }
    if (tags == Py_None) {
        tags_tuple = PyTuple_New(0);
    } else if (PyList_Check(tags)) {
        tags_tuple = PyList_AsTuple(tags);
    } else {
        result = 0;
        goto done;
    }
    if (!tags_tuple || !(key = PyTuple_Pack(3, metric, second, tags_tuple))) {
        goto done;
    }
    PyObject *known = PyDict_GetItemWithError(cache, key); /* borrowed */
    if (!known) {
        result = PyErr_Occurred() ? -1 : 0;
        goto done;
    }
    if (!(type = attr(series, s_type))) {
        goto done;
    }
    PyObject *kind_entry = PyDict_GetItemWithError(kinds, type); /* borrowed: (kind, temporality, gauge) */
    if (!kind_entry) {
        result = PyErr_Occurred() ? -1 : 0;
        goto done;
    }
    PyObject *kind = PyTuple_GET_ITEM(kind_entry, 0);
    PyObject *temporality = PyTuple_GET_ITEM(kind_entry, 1);
    int gauge = PyObject_IsTrue(PyTuple_GET_ITEM(kind_entry, 2));
    if (!(interval = attr(series, s_interval))) {
        goto done;
    }
    if (interval == Py_None) {
        interval_ms = Py_NewRef(Py_None);
    } else {
        long long seconds = PyLong_AsLongLong(interval);
        if (seconds == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            result = 0;
            goto done;
        }
        if (seconds < 0 || seconds > INT64_MAX / 1000) {
            result = 0; /* Python says what is wrong */
            goto done;
        }
        interval_ms = (seconds == 0 || gauge) ? Py_NewRef(Py_None) : PyLong_FromLongLong(seconds * 1000);
        if (!interval_ms) {
            goto done;
        }
    }
    if (version == 2) {
        if (!(unit = attr(series, s_unit))) {
            goto done;
        }
        if (unit != Py_None && (!PyUnicode_Check(unit) || PyUnicode_GET_LENGTH(unit) == 0)) {
            Py_SETREF(unit, Py_NewRef(Py_None));
        }
    } else {
        unit = Py_NewRef(Py_None);
    }
    if (!(points = attr(series, s_points))) {
        goto done;
    }
    Py_buffer raw;
    if (PyObject_GetBuffer(points, &raw, PyBUF_SIMPLE) < 0) {
        goto done;
    }
    long n = (version == 1 ? fill_pairs : fill_objects)(t, (const char *)raw.buf, raw.len);
    PyBuffer_Release(&raw);
    if (n == -2) {
        goto done;
    }
    if (n == -1) {
        result = 0;
        goto done;
    }
    if (n > 0) {
        PyObject *sid = PyTuple_GET_ITEM(known, 0);
        PyObject *normalized = PyTuple_GET_ITEM(known, 1);
        header = Py_BuildValue("(OOOOOOOl)", org, sid, kind, interval_ms, temporality, Py_None, unit, n);
        reg_key = PyTuple_Pack(2, org, sid);
        reg_value = PyTuple_Pack(2, metric, normalized);
        if (!header || !reg_key || !reg_value || PyList_Append(headers, header) < 0) {
            goto done;
        }
        PyObject *had = PyDict_SetDefault(registered, reg_key, reg_value); /* borrowed */
        if (!had) {
            goto done;
        }
    }
    result = 1;
done:
    Py_XDECREF(metric);
    Py_XDECREF(tags);
    Py_XDECREF(second);
    Py_XDECREF(tags_tuple);
    Py_XDECREF(key);
    Py_XDECREF(type);
    Py_XDECREF(interval);
    Py_XDECREF(unit);
    Py_XDECREF(points);
    Py_XDECREF(interval_ms);
    Py_XDECREF(header);
    Py_XDECREF(reg_key);
    Py_XDECREF(reg_value);
    return result;
}

static PyObject *
translate_known(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *series_list, *cache, *kinds, *org, *headers, *registered;
    Py_ssize_t start;
    int version;
    Target t;
    if (!PyArg_ParseTuple(args, "O!niO!O!OO!O!O!O!LL", &PyList_Type, &series_list, &start, &version,
                          &PyDict_Type, &cache, &PyDict_Type, &kinds, &org, &PyList_Type, &headers, &PyDict_Type,
                          &registered, &PyByteArray_Type, &t.times, &PyByteArray_Type, &t.values, &t.floor_ms,
                          &t.ceiling_ms)) {
        return NULL;
    }
    if (version != 1 && version != 2) {
        PyErr_SetString(PyExc_ValueError, "version must be 1 or 2");
        return NULL;
    }
    Py_ssize_t count = PyList_GET_SIZE(series_list);
    Py_ssize_t i = start < 0 ? 0 : start;
    for (; i < count; i++) {
        int done = take_series(PyList_GET_ITEM(series_list, i), version, cache, kinds, org, &t, headers,
                               registered);
        if (done < 0) {
            return NULL;
        }
        if (done == 0) {
            break;
        }
    }
    return PyLong_FromSsize_t(i);
}

static PyMethodDef methods[] = {
    {"parse_pairs", parse_pairs, METH_VARARGS,
     "parse_pairs(times, values, raw, floor_ms, ceiling_ms) -> count appended, or -1 (not handled)."},
    {"parse_objects", parse_objects, METH_VARARGS,
     "parse_objects(times, values, raw, floor_ms, ceiling_ms) -> count appended, or -1 (not handled)."},
    {"translate_known", translate_known, METH_VARARGS,
     "translate_known(series, start, version, cache, kinds, org_id, headers, registered, times, values, "
     "floor_ms, ceiling_ms) -> index of the first series left to Python (len(series) when none)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef points_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "sextant.faces.datadog._points",
    .m_doc = "Datadog point arrays parsed from raw JSON into flat int64/float64 buffers.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__points(void)
{
    s_metric = PyUnicode_InternFromString("metric");
    s_tags = PyUnicode_InternFromString("tags");
    s_host = PyUnicode_InternFromString("host");
    s_resources = PyUnicode_InternFromString("resources");
    s_type = PyUnicode_InternFromString("type");
    s_interval = PyUnicode_InternFromString("interval");
    s_unit = PyUnicode_InternFromString("unit");
    s_points = PyUnicode_InternFromString("points");
    if (!s_metric || !s_tags || !s_host || !s_resources || !s_type || !s_interval || !s_unit || !s_points) {
        return NULL;
    }
    return PyModule_Create(&points_module);
}
