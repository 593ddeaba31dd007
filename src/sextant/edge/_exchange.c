/* The per-request part of the request context (sextant/edge/requests.py), in native code.
 *
 * Every request, whatever its route, gets an id, echoes it in its response head and leaves one access-log
 * record. Written in Python that was a header scan, an id formatted, a closure wrapping the server's send,
 * a copied response head and a record built from half a dozen expressions: about 2.8 us a request in
 * isolation, some 6% of the server's CPU for an intake request under load. Here it is one object per
 * request, about 1 us, that is the send the application sees.
 *
 * An Exchange is made from the request's ASGI scope and the server's send. It takes the caller's
 * X-Request-Id when that is 1 to 128 characters of [A-Za-z0-9._:-] (the first such header), else makes
 * one: the process's prefix and a counter, in hex. It stores the id in scope["state"]["request_id"].
 * Called with a message, it forwards it to the server's send; a response start is forwarded as a copy
 * with the id's header appended (applications may send one prebuilt message for every request) and its
 * status is remembered. record() builds the access-log record.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#define MAX_INCOMING_ID 128
#define PREFIX_LENGTH 8
#define ID_LENGTH (PREFIX_LENGTH + 8)

static PyObject *header_name;   /* b"x-request-id" */
static PyObject *str_type;      /* "type" */
static PyObject *str_status;    /* "status" */
static PyObject *str_headers;   /* "headers" */
static PyObject *str_state;     /* "state" */
static PyObject *str_request_id;
static PyObject *str_method;
static PyObject *str_path;
static PyObject *str_client;
static PyObject *str_request;   /* the record's msg, "request" */
static PyObject *str_start;     /* "http.response.start" */
static PyObject *status_unset;  /* 500: what a request that never started a response is logged with */
static uint32_t id_counter;

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *scope;
    PyObject *send;
    PyObject *request_id;  /* str */
    PyObject *id_header;   /* (b"x-request-id", id as bytes) */
    PyObject *status;      /* int */
    double started;        /* monotonic seconds */
} Exchange;

/* mapping[key] as a new reference; NULL without an exception when the key is missing. ASGI's scopes and
 * messages are dicts, read without a lookup of __getitem__; any other mapping is read through it. */
static PyObject *get_item(PyObject *mapping, PyObject *key) {
    if (PyDict_CheckExact(mapping)) return Py_XNewRef(PyDict_GetItemWithError(mapping, key));
    PyObject *value = PyObject_GetItem(mapping, key);
    if (value == NULL && PyErr_ExceptionMatches(PyExc_KeyError)) PyErr_Clear();
    return value;
}

static double clock_seconds(clockid_t clock) {
    struct timespec now;
    clock_gettime(clock, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

static int valid_id_char(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == ':' || c == '-';
}

/* The value of the first X-Request-Id header that is a sane id (a new reference), or NULL without an
 * exception when there is none. NULL with an exception when the headers are not ASGI's shape. */
static PyObject *incoming_id(PyObject *headers) {
    PyObject *seq = PySequence_Fast(headers, "scope['headers'] must be a sequence of (name, value) pairs");
    if (seq == NULL) return NULL;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    const char *wanted = PyBytes_AS_STRING(header_name);
    Py_ssize_t wanted_length = PyBytes_GET_SIZE(header_name);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *pair = items[i];
        PyObject *name, *value;
        if (PyTuple_Check(pair) && PyTuple_GET_SIZE(pair) == 2) {
            name = PyTuple_GET_ITEM(pair, 0);
            value = PyTuple_GET_ITEM(pair, 1);
        } else if (PyList_Check(pair) && PyList_GET_SIZE(pair) == 2) {
            name = PyList_GET_ITEM(pair, 0);
            value = PyList_GET_ITEM(pair, 1);
        } else {
            continue;
        }
        if (!PyBytes_Check(name) || PyBytes_GET_SIZE(name) != wanted_length ||
            memcmp(PyBytes_AS_STRING(name), wanted, (size_t)wanted_length) != 0 || !PyBytes_Check(value))
            continue;
        Py_ssize_t length = PyBytes_GET_SIZE(value);
        const unsigned char *text = (const unsigned char *)PyBytes_AS_STRING(value);
        int sane = length >= 1 && length <= MAX_INCOMING_ID;
        for (Py_ssize_t k = 0; sane && k < length; k++) sane = valid_id_char(text[k]);
        if (sane) {
            Py_INCREF(value);
            Py_DECREF(seq);
            return value;
        }
    }
    Py_DECREF(seq);
    return NULL;
}

static PyObject *new_id(PyObject *prefix) {
    Py_ssize_t prefix_length;
    const char *prefix_text = PyUnicode_AsUTF8AndSize(prefix, &prefix_length);
    if (prefix_text == NULL) return NULL;
    if (prefix_length != PREFIX_LENGTH) {
        PyErr_Format(PyExc_ValueError, "the id prefix must be %d characters", PREFIX_LENGTH);
        return NULL;
    }
    static const char hex[] = "0123456789abcdef";
    char id[ID_LENGTH];
    memcpy(id, prefix_text, PREFIX_LENGTH);
    uint32_t number = id_counter++;
    for (int k = ID_LENGTH - 1; k >= PREFIX_LENGTH; k--, number >>= 4) id[k] = hex[number & 0xF];
    return PyBytes_FromStringAndSize(id, ID_LENGTH);
}

static PyObject *Exchange_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf,
                                     PyObject *kwnames);

static PyObject *Exchange_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    PyObject *scope, *send, *prefix;
    static char *keywords[] = {"scope", "send", "id_prefix", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOU", keywords, &scope, &send, &prefix)) return NULL;
    if (!PyMapping_Check(scope)) {
        PyErr_SetString(PyExc_TypeError, "an ASGI scope is a mapping");
        return NULL;
    }
    PyObject *headers = get_item(scope, str_headers);
    if (headers == NULL) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_KeyError, "scope has no 'headers'");
        return NULL;
    }
    PyObject *id_bytes = incoming_id(headers);
    Py_DECREF(headers);
    if (id_bytes == NULL) {
        if (PyErr_Occurred()) return NULL;
        id_bytes = new_id(prefix);
        if (id_bytes == NULL) return NULL;
    }
    /* The id is ASCII either way (checked, or made of hex digits). */
    PyObject *request_id = PyUnicode_DecodeASCII(PyBytes_AS_STRING(id_bytes), PyBytes_GET_SIZE(id_bytes), NULL);
    PyObject *id_header = request_id == NULL ? NULL : PyTuple_Pack(2, header_name, id_bytes);
    Py_DECREF(id_bytes);
    if (id_header == NULL) {
        Py_XDECREF(request_id);
        return NULL;
    }
    PyObject *state = get_item(scope, str_state);
    int stored;
    if (state == NULL) {
        if (PyErr_Occurred()) goto fail;
        state = PyDict_New();
        if (state == NULL) goto fail;
        stored = PyDict_SetItem(state, str_request_id, request_id) == 0 &&
                 PyObject_SetItem(scope, str_state, state) == 0;
    } else {
        stored = PyObject_SetItem(state, str_request_id, request_id) == 0;
    }
    Py_DECREF(state);
    if (!stored) goto fail;
    Exchange *self = (Exchange *)type->tp_alloc(type, 0);
    if (self == NULL) goto fail;
    self->vectorcall = Exchange_vectorcall;
    Py_INCREF(scope);
    self->scope = scope;
    Py_INCREF(send);
    self->send = send;
    self->request_id = request_id;
    self->id_header = id_header;
    Py_INCREF(status_unset);
    self->status = status_unset;
    self->started = clock_seconds(CLOCK_MONOTONIC);
    return (PyObject *)self;
fail:
    Py_DECREF(request_id);
    Py_DECREF(id_header);
    return NULL;
}

/* The response head to send: a copy of `message` with the id's header after its own. */
static PyObject *with_id_header(Exchange *self, PyObject *message) {
    PyObject *status = get_item(message, str_status);
    if (status == NULL && PyErr_Occurred()) return NULL;
    if (status != NULL) Py_SETREF(self->status, status);
    PyObject *headers = get_item(message, str_headers);
    if (headers == NULL && PyErr_Occurred()) return NULL;
    PyObject *copied = headers == NULL ? PyList_New(0) : PySequence_List(headers);
    Py_XDECREF(headers);
    if (copied == NULL) return NULL;
    PyObject *head = NULL;
    if (PyList_Append(copied, self->id_header) == 0 && (head = PyDict_New()) != NULL &&
        (PyDict_Update(head, message) != 0 || PyDict_SetItem(head, str_headers, copied) != 0))
        Py_CLEAR(head);
    Py_DECREF(copied);
    return head;
}

static PyObject *Exchange_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf,
                                     PyObject *kwnames) {
    Exchange *self = (Exchange *)callable;
    if (PyVectorcall_NARGS(nargsf) != 1 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) != 0)) {
        PyErr_SetString(PyExc_TypeError, "an exchange is called with one ASGI message");
        return NULL;
    }
    PyObject *message = args[0];
    if (!PyMapping_Check(message)) {
        PyErr_SetString(PyExc_TypeError, "an ASGI message is a mapping");
        return NULL;
    }
    PyObject *kind = get_item(message, str_type);
    if (kind == NULL && PyErr_Occurred()) return NULL;
    int starts = kind != NULL && PyUnicode_Check(kind) &&
                 (kind == str_start || PyUnicode_Compare(kind, str_start) == 0);
    Py_XDECREF(kind);
    if (!starts) return PyObject_CallOneArg(self->send, message);
    PyObject *head = with_id_header(self, message);
    if (head == NULL) return NULL;
    PyObject *result = PyObject_CallOneArg(self->send, head);
    Py_DECREF(head);
    return result;
}

static PyObject *Exchange_record(Exchange *self, PyObject *record_type) {
    double elapsed_ms = (clock_seconds(CLOCK_MONOTONIC) - self->started) * 1000.0;
    PyObject *record = NULL, *address = NULL, *ts = NULL, *duration = NULL, *client = NULL;
    PyObject *method = get_item(self->scope, str_method);
    PyObject *path = method == NULL ? NULL : get_item(self->scope, str_path);
    if (path == NULL) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_KeyError, "scope has no 'method' or 'path'");
        goto done;
    }
    client = get_item(self->scope, str_client);
    if (client == NULL && PyErr_Occurred()) goto done;
    if (client != NULL && client != Py_None) {
        int has = PyObject_IsTrue(client);
        if (has < 0 || (has && (address = PySequence_GetItem(client, 0)) == NULL)) goto done;
    }
    if (address == NULL) address = Py_NewRef(Py_None);
    ts = PyFloat_FromDouble(clock_seconds(CLOCK_REALTIME));
    /* Microseconds, as the log has always shown them. */
    duration = PyFloat_FromDouble(nearbyint(elapsed_ms * 1000.0) / 1000.0);
    if (ts != NULL && duration != NULL) {
        PyObject *fields[] = {ts, str_request, self->request_id, method, path, self->status, duration, address};
        record = PyObject_Vectorcall(record_type, fields, 8, NULL);
    }
done:
    Py_XDECREF(method);
    Py_XDECREF(path);
    Py_XDECREF(client);
    Py_XDECREF(address);
    Py_XDECREF(ts);
    Py_XDECREF(duration);
    return record;
}

static PyObject *Exchange_get_request_id(Exchange *self, void *closure) {
    (void)closure;
    return Py_NewRef(self->request_id);
}

static PyObject *Exchange_get_status(Exchange *self, void *closure) {
    (void)closure;
    return Py_NewRef(self->status);
}

static int Exchange_traverse(Exchange *self, visitproc visit, void *arg) {
    Py_VISIT(self->scope);
    Py_VISIT(self->send);
    return 0;
}

static int Exchange_clear(Exchange *self) {
    Py_CLEAR(self->scope);
    Py_CLEAR(self->send);
    return 0;
}

static void Exchange_dealloc(Exchange *self) {
    PyObject_GC_UnTrack(self);
    Exchange_clear(self);
    Py_XDECREF(self->request_id);
    Py_XDECREF(self->id_header);
    Py_XDECREF(self->status);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Exchange_methods[] = {
    {"record", (PyCFunction)Exchange_record, METH_O,
     "record(record_type) -> record_type(ts, 'request', request_id, method, path, status, duration_ms, "
     "client): the access-log record of this request, timed until now."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Exchange_getset[] = {
    {"request_id", (getter)Exchange_get_request_id, NULL, "The request's id.", NULL},
    {"status", (getter)Exchange_get_status, NULL, "The response's status; 500 until a response starts.",
     NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject ExchangeType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "sextant.edge._exchange.Exchange",
    .tp_doc = "One request's id, and the send that echoes it in the response head.",
    .tp_basicsize = sizeof(Exchange),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = Exchange_new,
    .tp_dealloc = (destructor)Exchange_dealloc,
    .tp_traverse = (traverseproc)Exchange_traverse,
    .tp_clear = (inquiry)Exchange_clear,
    .tp_vectorcall_offset = offsetof(Exchange, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_methods = Exchange_methods,
    .tp_getset = Exchange_getset,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_exchange", "Request ids and access-log records, per request.", -1, NULL,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__exchange(void) {
    header_name = PyBytes_FromString("x-request-id");
    str_type = PyUnicode_InternFromString("type");
    str_status = PyUnicode_InternFromString("status");
    str_headers = PyUnicode_InternFromString("headers");
    str_state = PyUnicode_InternFromString("state");
    str_request_id = PyUnicode_InternFromString("request_id");
    str_method = PyUnicode_InternFromString("method");
    str_path = PyUnicode_InternFromString("path");
    str_client = PyUnicode_InternFromString("client");
    str_request = PyUnicode_InternFromString("request");
    str_start = PyUnicode_InternFromString("http.response.start");
    status_unset = PyLong_FromLong(500);
    if (header_name == NULL || str_type == NULL || str_status == NULL || str_headers == NULL ||
        str_state == NULL || str_request_id == NULL || str_method == NULL || str_path == NULL ||
        str_client == NULL || str_request == NULL || str_start == NULL || status_unset == NULL)
        return NULL;
    if (PyType_Ready(&ExchangeType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    if (PyModule_AddIntConstant(m, "PREFIX_LENGTH", PREFIX_LENGTH) < 0 ||
        PyModule_AddObjectRef(m, "Exchange", (PyObject *)&ExchangeType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
