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
    Py_buffer raw;
    PyObject *times;
    PyObject *values;
    long long floor_ms;
    long long ceiling_ms;
    Py_ssize_t times_size;
    Py_ssize_t values_size;
} Call;

static int
begin(PyObject *args, Call *call)
{
    if (!PyArg_ParseTuple(args, "O!O!y*LL", &PyByteArray_Type, &call->times, &PyByteArray_Type, &call->values,
                          &call->raw, &call->floor_ms, &call->ceiling_ms)) {
        return 0;
    }
    call->times_size = PyByteArray_GET_SIZE(call->times);
    call->values_size = PyByteArray_GET_SIZE(call->values);
    return 1;
}

/* Leave the buffers as they were and report "not on the fast path" (or the error, if one is set). */
static PyObject *
give_up(Call *call)
{
    int failed = PyErr_Occurred() != NULL;
    PyByteArray_Resize(call->times, call->times_size);
    PyByteArray_Resize(call->values, call->values_size);
    PyBuffer_Release(&call->raw);
    if (failed) {
        return NULL;
    }
    return PyLong_FromLong(-1);
}

static int
keep(Call *call, int64_t time_ms, double value)
{
    if (time_ms < call->floor_ms || time_ms > call->ceiling_ms || !isfinite(value)) {
        return 0;
    }
    return append(call->times, &time_ms, sizeof(time_ms)) && append(call->values, &value, sizeof(value));
}

static PyObject *
parse_pairs(PyObject *Py_UNUSED(module), PyObject *args)
{
    Call call;
    if (!begin(args, &call)) {
        return NULL;
    }
    Cursor c = {(const char *)call.raw.buf, (const char *)call.raw.buf + call.raw.len};
    long count = 0;
    if (!expect(&c, '[')) {
        return give_up(&call);
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
                return give_up(&call);
            }
            double ms = nearbyint(seconds * 1000.0);
            if (!(ms >= -9.2e18 && ms <= 9.2e18) || !keep(&call, (int64_t)ms, value)) {
                return give_up(&call);
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
            return give_up(&call);
        }
    }
    skip_ws(&c);
    if (c.p != c.end) {
        return give_up(&call);
    }
    PyBuffer_Release(&call.raw);
    return PyLong_FromLong(count);
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

static PyObject *
parse_objects(PyObject *Py_UNUSED(module), PyObject *args)
{
    Call call;
    if (!begin(args, &call)) {
        return NULL;
    }
    Cursor c = {(const char *)call.raw.buf, (const char *)call.raw.buf + call.raw.len};
    long count = 0;
    if (!expect(&c, '[')) {
        return give_up(&call);
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
                return give_up(&call);
            }
            for (int field = 0; field < 2; field++) {
                int key = point_key(&c);
                double number;
                int64_t as_int;
                int integer;
                if (key == 0 || !expect(&c, ':') || !parse_number(&c, &number, &integer, &as_int)) {
                    return give_up(&call);
                }
                if (key == 1) {
                    if (have_time || !integer) {
                        return give_up(&call);
                    }
                    have_time = 1;
                    seconds = as_int;
                } else {
                    if (have_value) {
                        return give_up(&call);
                    }
                    have_value = 1;
                    value = number;
                }
                if (field == 0 && !expect(&c, ',')) {
                    return give_up(&call);
                }
            }
            if (!expect(&c, '}')) {
                return give_up(&call);
            }
            if (seconds > INT64_MAX / 1000 || seconds < INT64_MIN / 1000 ||
                !keep(&call, seconds * 1000, value)) {
                return give_up(&call);
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
            return give_up(&call);
        }
    }
    skip_ws(&c);
    if (c.p != c.end) {
        return give_up(&call);
    }
    PyBuffer_Release(&call.raw);
    return PyLong_FromLong(count);
}

static PyMethodDef methods[] = {
    {"parse_pairs", parse_pairs, METH_VARARGS,
     "parse_pairs(times, values, raw, floor_ms, ceiling_ms) -> count appended, or -1 (not handled)."},
    {"parse_objects", parse_objects, METH_VARARGS,
     "parse_objects(times, values, raw, floor_ms, ceiling_ms) -> count appended, or -1 (not handled)."},
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
    return PyModule_Create(&points_module);
}
