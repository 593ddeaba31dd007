/* Native flattening of event attributes to dotted paths: the body of
 * sextant.core.events.flatten_attributes, the hottest per-event code of the ingest path.
 *
 * It must give exactly what the pure-Python version gave (kept in tests/core/flatten_reference.py as the
 * oracle of a property test): the same keys in the same order, the very same value objects, and errors at
 * the same points. Hence the slow generic paths below for dict and list subclasses and for non-str keys,
 * which JSON never produces but which the Python code handled in its own way.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* Nesting past which the C recursion stops whatever max_depth and the interpreter's recursion limit say:
 * in 3.11, Py_EnterRecursiveCall shares the limit with Python frames, which use no C stack, so a program
 * that raised sys.setrecursionlimit could otherwise let a deep document exhaust the C stack. A level takes
 * about 250 bytes of C stack (300 unoptimised), so this stays within 512 KiB, well inside any thread's
 * stack; and under the default recursion limit the Python version could not go deeper either. */
#define HARD_DEPTH_LIMIT 1000

/* Raised when the document is deeper than max_depth; the Python wrapper turns it into
 * AttributeLimitError, which lives in events.py with its message. */
static PyObject *DepthError;
static PyObject *empty_str;

typedef struct {
    PyObject *out;
    PyObject *skip;
    long max_depth;
} Flattener;

static int flatten_object(Flattener *f, PyObject *obj, PyObject *prefix, long depth, int in_array);
static int flatten_array(Flattener *f, PyObject *items, PyObject *path, long depth);

static int
enter_level(Flattener *f, long depth)
{
    /* Python checked the recursion limit on entering the function, before comparing with max_depth. */
    if (depth > HARD_DEPTH_LIMIT) {
        PyErr_SetString(PyExc_RecursionError, "maximum recursion depth exceeded while flattening attributes");
        return -1;
    }
    if (Py_EnterRecursiveCall(" while flattening attributes")) {
        return -1;
    }
    if (depth > f->max_depth) {
        Py_LeaveRecursiveCall();
        PyErr_SetNone(DepthError);
        return -1;
    }
    return 0;
}

/* f"{prefix}.{key}" if prefix else key */
static PyObject *
join_path(PyObject *prefix, PyObject *key)
{
    int truthy;
    if (PyUnicode_CheckExact(prefix)) {
        truthy = PyUnicode_GET_LENGTH(prefix) != 0;
    }
    else if ((truthy = PyObject_IsTrue(prefix)) < 0) {
        return NULL;
    }
    if (!truthy) {
        return Py_NewRef(key);
    }
    /* What an f-string does with each part: str itself for a str, else format(x, ""). */
    PyObject *p = PyUnicode_CheckExact(prefix) ? Py_NewRef(prefix) : PyObject_Format(prefix, NULL);
    if (p == NULL) {
        return NULL;
    }
    PyObject *k = PyUnicode_CheckExact(key) ? Py_NewRef(key) : PyObject_Format(key, NULL);
    if (k == NULL) {
        Py_DECREF(p);
        return NULL;
    }
    PyObject *path = NULL;
#if PY_VERSION_HEX < 0x030C0000
    /* A str from a __format__ of an old extension may not be in the canonical form yet (gone in 3.12). */
    if (PyUnicode_READY(p) < 0 || PyUnicode_READY(k) < 0) {
        goto done;
    }
#endif
    Py_ssize_t plen = PyUnicode_GET_LENGTH(p), klen = PyUnicode_GET_LENGTH(k);
    Py_UCS4 pmax = PyUnicode_MAX_CHAR_VALUE(p), kmax = PyUnicode_MAX_CHAR_VALUE(k);
    path = PyUnicode_New(plen + 1 + klen, pmax > kmax ? pmax : kmax);
    if (path == NULL) {
        goto done;
    }
    int kind = PyUnicode_KIND(path);
    void *data = PyUnicode_DATA(path);
    /* Built in one allocation rather than by two concatenations: this runs for every nested key of every
     * event. */
    if (PyUnicode_KIND(p) == kind) {
        memcpy(data, PyUnicode_DATA(p), (size_t)plen * (size_t)kind);
    }
    else if (PyUnicode_CopyCharacters(path, 0, p, 0, plen) < 0) {
        Py_CLEAR(path);
        goto done;
    }
    PyUnicode_WRITE(kind, data, plen, '.');
    if (PyUnicode_KIND(k) == kind) {
        memcpy((char *)data + (size_t)(plen + 1) * (size_t)kind, PyUnicode_DATA(k), (size_t)klen * (size_t)kind);
    }
    else if (PyUnicode_CopyCharacters(path, plen + 1, k, 0, klen) < 0) {
        Py_CLEAR(path);
    }
done:
    Py_DECREF(p);
    Py_DECREF(k);
    return path;
}

/* A path seen twice (through an array, or spelled both as "a.b" and {"a": {"b": ...}}) keeps every value. */
static int
put(PyObject *out, PyObject *path, PyObject *value, int from_array)
{
    PyObject *existing = PyDict_GetItemWithError(out, path);
    if (existing != NULL) {
        if (PyList_Check(existing)) {
            return PyList_Append(existing, value);
        }
        PyObject *pair = PyList_New(2);
        if (pair == NULL) {
            return -1;
        }
        PyList_SET_ITEM(pair, 0, Py_NewRef(existing));
        PyList_SET_ITEM(pair, 1, Py_NewRef(value));
        int rc = PyDict_SetItem(out, path, pair);
        Py_DECREF(pair);
        return rc;
    }
    if (PyErr_Occurred()) {
        return -1;
    }
    if (!from_array) {
        return PyDict_SetItem(out, path, value);
    }
    PyObject *list = PyList_New(1);
    if (list == NULL) {
        return -1;
    }
    PyList_SET_ITEM(list, 0, Py_NewRef(value));
    int rc = PyDict_SetItem(out, path, list);
    Py_DECREF(list);
    return rc;
}

static int
object_entry(Flattener *f, PyObject *prefix, PyObject *key, PyObject *value, long depth, int in_array)
{
    PyObject *path = join_path(prefix, key);
    if (path == NULL) {
        return -1;
    }
    int rc;
    if (PyDict_Check(value)) {
        rc = flatten_object(f, value, path, depth + 1, in_array);
    }
    else if (PyList_Check(value)) {
        rc = flatten_array(f, value, path, depth + 1);
    }
    else {
        rc = PySequence_Contains(f->skip, path);
        if (rc == 0) {
            rc = put(f->out, path, value, in_array);
        }
        else if (rc > 0) {
            rc = 0;
        }
    }
    Py_DECREF(path);
    return rc;
}

/* for key, value in pair, with the errors of Python's unpacking. */
static int
unpack_pair(PyObject *pair, PyObject **key, PyObject **value)
{
    if (PyTuple_CheckExact(pair) && PyTuple_GET_SIZE(pair) == 2) {
        *key = Py_NewRef(PyTuple_GET_ITEM(pair, 0));
        *value = Py_NewRef(PyTuple_GET_ITEM(pair, 1));
        return 0;
    }
    if (Py_TYPE(pair)->tp_iter == NULL && !PySequence_Check(pair)) {
        PyErr_Format(PyExc_TypeError, "cannot unpack non-iterable %.200s object", Py_TYPE(pair)->tp_name);
        return -1;
    }
    PyObject *it = PyObject_GetIter(pair);
    if (it == NULL) {
        return -1;
    }
    PyObject *got[2] = {NULL, NULL};
    int n = 0;
    while (n < 2 && (got[n] = PyIter_Next(it)) != NULL) {
        n++;
    }
    if (n == 2) {
        PyObject *extra = PyIter_Next(it);
        if (extra != NULL) {
            Py_DECREF(extra);
            PyErr_SetString(PyExc_ValueError, "too many values to unpack (expected 2)");
        }
    }
    else if (!PyErr_Occurred()) {
        PyErr_Format(PyExc_ValueError, "not enough values to unpack (expected 2, got %d)", n);
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) {
        Py_XDECREF(got[0]);
        Py_XDECREF(got[1]);
        return -1;
    }
    *key = got[0];
    *value = got[1];
    return 0;
}

static int
flatten_dict(Flattener *f, PyObject *obj, PyObject *prefix, long depth, int in_array)
{
    Py_ssize_t pos = 0, size = PyDict_GET_SIZE(obj);
    PyObject *key, *value;
    while (PyDict_Next(obj, &pos, &key, &value)) {
        /* Owned for the duration: a custom skip container could run code that changes the dict. */
        Py_INCREF(key);
        Py_INCREF(value);
        int rc = object_entry(f, prefix, key, value, depth, in_array);
        Py_DECREF(key);
        Py_DECREF(value);
        if (rc < 0) {
            return -1;
        }
        if (PyDict_GET_SIZE(obj) != size) {
            PyErr_SetString(PyExc_RuntimeError, "dictionary changed size during iteration");
            return -1;
        }
    }
    return 0;
}

/* for key, value in obj.items(), for what is not exactly a dict (a subclass may override items()). */
static int
flatten_items(Flattener *f, PyObject *obj, PyObject *prefix, long depth, int in_array)
{
    PyObject *items = PyObject_CallMethod(obj, "items", NULL);
    if (items == NULL) {
        return -1;
    }
    PyObject *it = PyObject_GetIter(items);
    Py_DECREF(items);
    if (it == NULL) {
        return -1;
    }
    PyObject *pair;
    while ((pair = PyIter_Next(it)) != NULL) {
        PyObject *key, *value;
        int rc = unpack_pair(pair, &key, &value);
        Py_DECREF(pair);
        if (rc == 0) {
            rc = object_entry(f, prefix, key, value, depth, in_array);
            Py_DECREF(key);
            Py_DECREF(value);
        }
        if (rc < 0) {
            Py_DECREF(it);
            return -1;
        }
    }
    Py_DECREF(it);
    return PyErr_Occurred() ? -1 : 0;
}

static int
flatten_object(Flattener *f, PyObject *obj, PyObject *prefix, long depth, int in_array)
{
    if (enter_level(f, depth) < 0) {
        return -1;
    }
    int rc = PyDict_CheckExact(obj) ? flatten_dict(f, obj, prefix, depth, in_array)
                                    : flatten_items(f, obj, prefix, depth, in_array);
    Py_LeaveRecursiveCall();
    return rc;
}

static int
array_item(Flattener *f, PyObject *item, PyObject *path, long depth)
{
    if (PyDict_Check(item)) {
        /* Every path below an array element is reached through the array: it holds a list. */
        return flatten_object(f, item, path, depth + 1, 1);
    }
    if (PyList_Check(item)) {
        return flatten_array(f, item, path, depth + 1);
    }
    return put(f->out, path, item, 1);
}

static int
flatten_array(Flattener *f, PyObject *items, PyObject *path, long depth)
{
    if (enter_level(f, depth) < 0) {
        return -1;
    }
    int rc = 0;
    int exact = PyList_CheckExact(items);
    int empty = exact ? PyList_GET_SIZE(items) == 0 : !PyObject_IsTrue(items);
    if (!exact && PyErr_Occurred()) {
        rc = -1;
        goto leave;
    }
    if (empty) {
        int present = PyDict_Contains(f->out, path);
        if (present < 0) {
            rc = -1;
            goto leave;
        }
        if (!present) {
            PyObject *list = PyList_New(0);
            if (list == NULL) {
                rc = -1;
                goto leave;
            }
            rc = PyDict_SetItem(f->out, path, list);
            Py_DECREF(list);
            if (rc < 0) {
                goto leave;
            }
        }
    }
    if (exact) {
        /* The size is read again at every step, as Python's list iterator does. */
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(items); i++) {
            PyObject *item = Py_NewRef(PyList_GET_ITEM(items, i));
            rc = array_item(f, item, path, depth);
            Py_DECREF(item);
            if (rc < 0) {
                goto leave;
            }
        }
    }
    else {
        PyObject *it = PyObject_GetIter(items);
        if (it == NULL) {
            rc = -1;
            goto leave;
        }
        PyObject *item;
        while ((item = PyIter_Next(it)) != NULL) {
            rc = array_item(f, item, path, depth);
            Py_DECREF(item);
            if (rc < 0) {
                break;
            }
        }
        Py_DECREF(it);
        if (rc == 0 && PyErr_Occurred()) {
            rc = -1;
        }
    }
leave:
    Py_LeaveRecursiveCall();
    return rc;
}

PyDoc_STRVAR(flatten_doc,
             "flatten(document, max_depth, skip, /)\n--\n\n"
             "Flatten a JSON object to {dotted path: value}; arrays become lists of every value under the "
             "path. Raises DepthError past max_depth levels.");

static PyObject *
flatten(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "flatten expected 3 arguments, got %zd", nargs);
        return NULL;
    }
    if (!PyLong_Check(args[1])) {
        PyErr_Format(PyExc_TypeError, "max_depth must be an int, not %.200s", Py_TYPE(args[1])->tp_name);
        return NULL;
    }
    /* Beyond a C long, a max_depth is never reached (or always exceeded if negative). */
    int overflow;
    long max_depth = PyLong_AsLongAndOverflow(args[1], &overflow);
    if (overflow) {
        max_depth = overflow > 0 ? LONG_MAX : LONG_MIN;
    }
    else if (max_depth == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Flattener f = {.out = PyDict_New(), .skip = args[2], .max_depth = max_depth};
    if (f.out == NULL) {
        return NULL;
    }
    if (flatten_object(&f, args[0], empty_str, 1, 0) < 0) {
        Py_DECREF(f.out);
        return NULL;
    }
    return f.out;
}

static PyMethodDef methods[] = {
    {"flatten", (PyCFunction)(void (*)(void))flatten, METH_FASTCALL, flatten_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "sextant.core._flatten",
    .m_doc = "Native flattening of event attributes (see sextant.core.events.flatten_attributes).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__flatten(void)
{
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) {
        return NULL;
    }
    if (empty_str == NULL && (empty_str = PyUnicode_FromStringAndSize("", 0)) == NULL) {
        goto error;
    }
    if (DepthError == NULL &&
        (DepthError = PyErr_NewExceptionWithDoc("sextant.core._flatten.DepthError",
                                                "The document is nested deeper than max_depth.", NULL,
                                                NULL)) == NULL) {
        goto error;
    }
    if (PyModule_AddObjectRef(module, "DepthError", DepthError) < 0) {
        goto error;
    }
    return module;
error:
    Py_DECREF(module);
    return NULL;
}
