/* A child's scoreboard slot as each request starts and ends, compiled.
 *
 * slotstatus.PySlotCore is the same thing in Python and the reference: see
 * there for what each method writes.  This twin writes the same bytes with
 * one aligned store per field (a reader in another process sees each field
 * go from its old value to its new one, never a zero in between), reads the
 * time as time.monotonic() does, and calls back into Python only for what is
 * rare: ``_wakeIfAllBusy()`` when the manager raised the wake flag, and
 * ``_spent(now)`` when the child served its request limit.
 *
 * The layout (scoreboard.py) is fixed here as offsets; the tests compare the
 * bytes both twins write.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#define HEADER_SIZE 64
#define SLOT_SIZE 256
#define WAKE_OFFSET 24
#define STATE_OFFSET 4
#define REQUESTS_OFFSET 8
#define CHANGED_OFFSET 16
#define LIMIT_OFFSET 28
#define SUM_OFFSET 32
#define CODES_OFFSET 40
#define BUCKETS_OFFSET 72
#define LINE_OFFSET 192
#define LINE_SIZE 64
#define IDLE 2
#define BUSY 3
#define STOPPING 4

static const double buckets[] = {0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75,
                                 1.0, 2.5, 5.0, 7.5, 10.0};
#define NBUCKETS ((int)(sizeof(buckets) / sizeof(buckets[0])))

typedef struct {
    PyObject_HEAD
    PyObject *map;      /* the whole shared mapping; NULL until __init__ */
    Py_ssize_t offset;
    double started;
    double spentAt;
    int code;
    char asked;
    unsigned int limit;
} SlotCore;

static double
now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void
add(char *at)
{
    uint64_t n;
    memcpy(&n, at, sizeof n);
    n += 1;
    memcpy(at, &n, sizeof n);
}

/* The slot, writable, in ``view`` (release it after): NULL with an exception
 * if the map was released (the board closed) or is not one this slot fits. */
static char *
slotOf(SlotCore *self, Py_buffer *view)
{
    if (self->map == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "SlotCore.__init__ was not called");
        return NULL;
    }
    if (PyObject_GetBuffer(self->map, view, PyBUF_WRITABLE) < 0)
        return NULL;
    if (self->offset + SLOT_SIZE > view->len) {
        PyBuffer_Release(view);
        PyErr_Format(PyExc_ValueError, "offset %zd is not a slot's in a %zd-byte scoreboard",
                     self->offset, view->len);
        return NULL;
    }
    return (char *)view->buf + self->offset;
}

static int
SlotCore_init(SlotCore *self, PyObject *args, PyObject *kwds)
{
    PyObject *map;
    Py_ssize_t offset;
    static char *names[] = {"map", "offset", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "On", names, &map, &offset))
        return -1;
    if (self->map != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "SlotCore is already bound to a slot");
        return -1;
    }
    if (offset < HEADER_SIZE || (offset - HEADER_SIZE) % SLOT_SIZE) {
        PyErr_Format(PyExc_ValueError, "offset %zd is not a slot's", offset);
        return -1;
    }
    Py_INCREF(map);
    self->map = map;
    self->offset = offset;
    Py_buffer view;
    char *slot = slotOf(self, &view);
    if (slot == NULL) {
        Py_CLEAR(self->map);
        return -1;
    }
    uint32_t limit;
    memcpy(&limit, slot + LIMIT_OFFSET, sizeof limit);
    self->limit = limit;
    PyBuffer_Release(&view);
    return 0;
}

static void
SlotCore_dealloc(SlotCore *self)
{
    Py_CLEAR(self->map);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
SlotCore_busy(SlotCore *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs > 1) {
        PyErr_SetString(PyExc_TypeError, "busy() takes at most one argument");
        return NULL;
    }
    if (nargs == 1 && args[0] != Py_None) {
        PyObject *line = args[0], *encoded = NULL;
        if (PyUnicode_Check(line)) {
            line = encoded = PyUnicode_AsEncodedString(line, "utf-8", "replace");
            if (encoded == NULL)
                return NULL;
        }
        else if (!PyBytes_Check(line)) {
            PyErr_SetString(PyExc_TypeError, "busy(): the request line must be str or bytes");
            return NULL;
        }
        Py_buffer view;
        char *slot = slotOf(self, &view);
        if (slot == NULL) {
            Py_XDECREF(encoded);
            return NULL;
        }
        Py_ssize_t n = PyBytes_GET_SIZE(line);
        if (n > LINE_SIZE)
            n = LINE_SIZE;
        memcpy(slot + LINE_OFFSET, PyBytes_AS_STRING(line), n);
        memset(slot + LINE_OFFSET + n, 0, LINE_SIZE - n);
        PyBuffer_Release(&view);
        Py_XDECREF(encoded);
    }
    self->code = 0;
    Py_INCREF(self);
    return (PyObject *)self;
}

static PyObject *
SlotCore_responded(SlotCore *self, PyObject *code)
{
    long c = PyLong_AsLong(code);
    if (c == -1 && PyErr_Occurred())
        return NULL;
    self->code = (int)(c > INT32_MAX ? INT32_MAX : c < INT32_MIN ? INT32_MIN : c);
    Py_RETURN_NONE;
}

static PyObject *
SlotCore_enter(SlotCore *self, PyObject *unused)
{
    Py_buffer view;
    char *slot = slotOf(self, &view);
    if (slot == NULL)
        return NULL;
    if (slot[STATE_OFFSET] == STOPPING)
        self->asked = 1;
    double t = self->started = now();
    memcpy(slot + CHANGED_OFFSET, &t, sizeof t);
    slot[STATE_OFFSET] = BUSY;
    uint32_t wake;
    memcpy(&wake, (char *)view.buf + WAKE_OFFSET, sizeof wake);
    PyBuffer_Release(&view);
    if (wake) {
        PyObject *done = PyObject_CallMethod((PyObject *)self, "_wakeIfAllBusy", NULL);
        if (done == NULL)
            return NULL;
        Py_DECREF(done);
    }
    Py_INCREF(self);
    return (PyObject *)self;
}

static PyObject *
SlotCore_exit(SlotCore *self, PyObject *args)
{
    Py_buffer view;
    char *slot = slotOf(self, &view);
    if (slot == NULL)
        return NULL;
    double t = now(), spent = t - self->started, total;
    memcpy(&total, slot + SUM_OFFSET, sizeof total);
    total += spent;
    memcpy(slot + SUM_OFFSET, &total, sizeof total);
    int bucket = 0;
    while (bucket < NBUCKETS && buckets[bucket] < spent)    /* bisect_left */
        bucket++;
    add(slot + BUCKETS_OFFSET + 8 * bucket);
    int kind = self->code / 100 - 2;
    if (kind >= 0 && kind < 4)
        add(slot + CODES_OFFSET + 8 * kind);
    uint64_t requests;
    memcpy(&requests, slot + REQUESTS_OFFSET, sizeof requests);
    requests += 1;
    memcpy(slot + REQUESTS_OFFSET, &requests, sizeof requests);
    if (slot[STATE_OFFSET] == STOPPING)
        self->asked = 1;
    memcpy(slot + CHANGED_OFFSET, &t, sizeof t);
    slot[STATE_OFFSET] = self->asked ? STOPPING : IDLE;
    PyBuffer_Release(&view);
    if (requests == self->limit) {
        PyObject *done = PyObject_CallMethod((PyObject *)self, "_spent", "d", t);
        if (done == NULL)
            return NULL;
        Py_DECREF(done);
    }
    Py_RETURN_FALSE;
}

static PyMethodDef SlotCore_methods[] = {
    {"busy", (PyCFunction)(void (*)(void))SlotCore_busy, METH_FASTCALL,
     "busy(line=None) -> self: see IWorkerStatus."},
    {"responded", (PyCFunction)SlotCore_responded, METH_O,
     "responded(code): see IWorkerStatus."},
    {"__enter__", (PyCFunction)SlotCore_enter, METH_NOARGS, "A request starts."},
    {"__exit__", (PyCFunction)SlotCore_exit, METH_VARARGS, "The request ended."},
    {NULL, NULL, 0, NULL}
};

static PyMemberDef SlotCore_members[] = {
    {"asked", T_BOOL, offsetof(SlotCore, asked), 0, "the manager wrote STOPPING in the slot"},
    {"spentAt", T_DOUBLE, offsetof(SlotCore, spentAt), 0, "when the request limit was served"},
    {"started", T_DOUBLE, offsetof(SlotCore, started), 0, "when the request started"},
    {"code", T_INT, offsetof(SlotCore, code), READONLY, "the response's status code, or 0"},
    {"limit", T_UINT, offsetof(SlotCore, limit), READONLY, "the slot's request limit (0: none)"},
    {"offset", T_PYSSIZET, offsetof(SlotCore, offset), READONLY, "the slot's offset in the map"},
    {NULL, 0, 0, 0, NULL}
};

static PyTypeObject SlotCoreType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "peak_lite.running.procman._slotcore.SlotCore",
    .tp_basicsize = sizeof(SlotCore),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "SlotCore(map, offset): see slotstatus.PySlotCore.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)SlotCore_init,
    .tp_dealloc = (destructor)SlotCore_dealloc,
    .tp_methods = SlotCore_methods,
    .tp_members = SlotCore_members,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_slotcore",
    "A child's scoreboard slot as each request starts and ends, compiled.", -1, NULL
};

PyMODINIT_FUNC
PyInit__slotcore(void)
{
    if (PyType_Ready(&SlotCoreType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&SlotCoreType);
    if (PyModule_AddObject(m, "SlotCore", (PyObject *)&SlotCoreType) < 0) {
        Py_DECREF(&SlotCoreType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
