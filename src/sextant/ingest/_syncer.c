/* Ingest-log writes and fdatasync on a native thread, with completion reported through a pipe.
 *
 * The write path appends one record to the ingest log per group of requests and syncs it. The event loop
 * hands the record over (a copy) and goes on; this thread writes it where the loop placed it and syncs.
 * A pwrite that waits for the file system (it does, behind a running fdatasync of the same file) would
 * otherwise stall every request on the loop.
 *
 * A write that fails leaves a torn record, and any record written after it would be lost to replay,
 * which ends at the tear. So a failure is sticky: every write asked for before the loop calls resume()
 * (which it does once it has cut the tear off) fails too, unwritten, with the same errno.
 *
 * Why a native thread: from a Python thread, every sync costs that thread the interpreter lock three
 * times (to take the group, after the syscall, to wake the event loop), and each time it must wait for
 * the busy event-loop thread to give the lock up. A native thread needs no lock: the loop hands the record
 * over here and learns of its completion from a pipe it watches like any socket.
 *
 * The loop may ask again while a sync runs: the thread then writes everything asked for meanwhile and syncs
 * once more as soon as the running sync is done (one fdatasync makes every write before it durable), and
 * reports the newest record of the run. The thread
 * never waits for the loop to notice a completion before it starts the next sync: under load it syncs
 * back to back.
 *
 * Waking a sleeping thread is dear where an idle CPU halts (a virtual machine's does: the wake-up is an
 * interrupt to another CPU, then an exit to the hypervisor), and the loop pays for it in write(). Under
 * load the next request comes within a few hundred microseconds of a completion, while the loop answers
 * the requests just made durable; so after each sync the thread watches for one for up to `spin_ns` before
 * it sleeps, and a write asked for meanwhile costs the loop no system call. Idle, the thread sleeps.
 * Between the two, when requests come a little too far apart to be caught, every watch would be time
 * spent for nothing: a watch that misses halves the next one (down to none), and a request that comes
 * within `spin_ns` of a completion restores it.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* What the thread writes to the pipe after each sync: the caller's sequence number and errno (0 on
 * success, negated when the write failed rather than the sync). 16 bytes, far below PIPE_BUF, so each
 * record arrives whole. */
typedef struct {
    int64_t seq;
    int64_t error;
} Completion;

/* One record to write: `length` bytes at `offset` of `fd`. */
typedef struct Job {
    struct Job *next;
    int fd;
    int64_t seq;
    int64_t epoch;
    off_t offset;
    size_t length;
    char data[];
} Job;

typedef struct {
    PyObject_HEAD
    pthread_t thread;
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    int started;
    atomic_int stopping;
    /* Writes asked for and not yet started, oldest first (with the mutex held); `pending` says whether
     * there are any, read without the mutex while the thread watches. */
    Job *head;
    Job *tail;
    atomic_int pending;
    /* Raised by resume() (with the mutex held): the writes of an epoch in which one failed all fail. */
    int64_t epoch;
    /* The thread waits on `wake` (set and read with the mutex held): only then does write() signal. */
    int sleeping;
    /* How long the thread watches for the next request after a sync, and how often write() woke it. */
    long long spin_ns;
    long long watch_ns; /* the next watch (see sync_loop); written by the thread only */
    long long wakeups;
    int notify_fd;
} Syncer;

static inline void
relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static int64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Watch for a sync request (or the stop) for up to watch_ns. */
static void
watch(Syncer *self)
{
    if (self->watch_ns == 0) {
        return;
    }
    int64_t until = now_ns() + self->watch_ns;
    for (;;) {
        for (int i = 0; i < 64; i++) {
            if (atomic_load_explicit(&self->pending, memory_order_acquire) ||
                atomic_load_explicit(&self->stopping, memory_order_relaxed)) {
                return;
            }
            relax();
        }
        if (now_ns() >= until) {
            return;
        }
    }
}

static void
report(Syncer *self, int64_t seq, int64_t error)
{
    Completion done = {seq, error};
    const char *p = (const char *)&done;
    size_t left = sizeof(done);
    while (left > 0) {
        ssize_t n = write(self->notify_fd, p, left);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            /* The reading end is gone: the writer is shutting down and waits for nothing. */
            return;
        }
        p += n;
        left -= (size_t)n;
    }
}

/* Write the whole job; 0, or the errno of the failure. */
static int
write_job(const Job *job)
{
    size_t done = 0;
    while (done < job->length) {
        ssize_t n = pwrite(job->fd, job->data + done, job->length - done, job->offset + (off_t)done);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno;
        }
        if (n == 0) {
            return EIO; /* no progress: do not spin on it */
        }
        done += (size_t)n;
    }
    return 0;
}

/* A run of consecutive jobs with one outcome, reported as one completion (its newest seq). */
typedef struct {
    int open;
    int fd;
    int64_t seq;
    int error;
} Run;

static void
end_run(Syncer *self, Run *run)
{
    if (!run->open) {
        return;
    }
    int64_t error = run->error;
    if (error == 0 && fdatasync(run->fd) != 0) {
        error = errno;
    }
    report(self, run->seq, error);
    run->open = 0;
}

static void *
sync_loop(void *arg)
{
    Syncer *self = (Syncer *)arg;
    int64_t completed = 0;
    /* The newest epoch in which a write failed, and how (touched by this thread only). */
    int64_t failed_epoch = -1;
    int failed_errno = 0;
    for (;;) {
        pthread_mutex_lock(&self->mutex);
        int slept = 0;
        while (self->head == NULL && !self->stopping) {
            slept = 1;
            self->sleeping = 1;
            pthread_cond_wait(&self->wake, &self->mutex);
            self->sleeping = 0;
        }
        if (self->head == NULL) {
            pthread_mutex_unlock(&self->mutex);
            return NULL;
        }
        if (!slept || now_ns() - completed <= self->spin_ns) {
            self->watch_ns = self->spin_ns;
        } else {
            self->watch_ns = self->watch_ns > 2000 ? self->watch_ns / 2 : 0;
        }
        Job *jobs = self->head;
        self->head = self->tail = NULL;
        self->pending = 0;
        pthread_mutex_unlock(&self->mutex);

        Run run = {0, -1, 0, 0};
        while (jobs != NULL) {
            Job *job = jobs;
            jobs = job->next;
            /* A failed write is reported as its errno negated, a failed sync as the errno itself: the
             * loop cuts off a torn record only after the first. */
            int error;
            if (job->epoch <= failed_epoch) {
                error = -failed_errno;
            } else {
                error = -write_job(job);
                if (error != 0) {
                    failed_epoch = job->epoch;
                    failed_errno = -error;
                }
            }
            if (run.open && (run.error != error || run.fd != job->fd)) {
                end_run(self, &run);
            }
            run.open = 1;
            run.fd = job->fd;
            run.seq = job->seq;
            run.error = error;
            free(job);
        }
        end_run(self, &run);
        completed = now_ns();
        watch(self);
    }
}

static int
Syncer_init(Syncer *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"notify_fd", "spin_ns", NULL};
    int notify_fd;
    long long spin_ns = 300000;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "i|$L", kwlist, &notify_fd, &spin_ns)) {
        return -1;
    }
    if (spin_ns < 0) {
        PyErr_SetString(PyExc_ValueError, "spin_ns must not be negative");
        return -1;
    }
    if (self->started) {
        PyErr_SetString(PyExc_RuntimeError, "Syncer is already initialized");
        return -1;
    }
    self->notify_fd = notify_fd;
    self->stopping = 0;
    self->head = self->tail = NULL;
    self->pending = 0;
    self->epoch = 0;
    self->sleeping = 0;
    self->spin_ns = spin_ns;
    self->watch_ns = spin_ns;
    self->wakeups = 0;
    pthread_mutex_init(&self->mutex, NULL);
    pthread_cond_init(&self->wake, NULL);
    int rc = pthread_create(&self->thread, NULL, sync_loop, self);
    if (rc != 0) {
        errno = rc;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    self->started = 1;
    return 0;
}

static PyObject *
Syncer_write(Syncer *self, PyObject *args)
{
    int fd;
    long long offset, seq;
    Py_buffer record;
    if (!PyArg_ParseTuple(args, "iLy*L", &fd, &offset, &record, &seq)) {
        return NULL;
    }
    if (!self->started || offset < 0 || record.len == 0) {
        PyBuffer_Release(&record);
        PyErr_SetString(!self->started ? PyExc_RuntimeError : PyExc_ValueError,
                        !self->started ? "Syncer is not running"
                                       : "the offset must not be negative and the record not empty");
        return NULL;
    }
    Job *job = malloc(sizeof(Job) + (size_t)record.len);
    if (job == NULL) {
        PyBuffer_Release(&record);
        return PyErr_NoMemory();
    }
    job->next = NULL;
    job->fd = fd;
    job->seq = (int64_t)seq;
    job->offset = (off_t)offset;
    job->length = (size_t)record.len;
    memcpy(job->data, record.buf, (size_t)record.len);
    PyBuffer_Release(&record);

    pthread_mutex_lock(&self->mutex);
    if (self->stopping || (self->tail != NULL && self->tail->fd != fd)) {
        int stopping = self->stopping;
        pthread_mutex_unlock(&self->mutex);
        free(job);
        PyErr_SetString(PyExc_RuntimeError,
                        stopping ? "Syncer is closed" : "a write to another file is waiting to start");
        return NULL;
    }
    job->epoch = self->epoch;
    if (self->tail == NULL) {
        self->head = job;
    } else {
        self->tail->next = job;
    }
    self->tail = job;
    atomic_store_explicit(&self->pending, 1, memory_order_release);
    if (self->sleeping) {
        self->wakeups++;
        pthread_cond_signal(&self->wake);
    }
    pthread_mutex_unlock(&self->mutex);
    Py_RETURN_NONE;
}

static PyObject *
Syncer_resume(Syncer *self, PyObject *Py_UNUSED(ignored))
{
    if (self->started) {
        pthread_mutex_lock(&self->mutex);
        self->epoch++;
        pthread_mutex_unlock(&self->mutex);
    }
    Py_RETURN_NONE;
}

static void
stop_thread(Syncer *self)
{
    if (!self->started) {
        return;
    }
    pthread_mutex_lock(&self->mutex);
    self->stopping = 1;
    pthread_cond_signal(&self->wake);
    pthread_mutex_unlock(&self->mutex);
    /* Outstanding writes and their sync finish first; it may take a while on a slow disk. */
    Py_BEGIN_ALLOW_THREADS
    pthread_join(self->thread, NULL);
    Py_END_ALLOW_THREADS
    self->started = 0;
    /* The thread wrote every job before it ended; none are left but by a failed start. */
    while (self->head != NULL) {
        Job *job = self->head;
        self->head = job->next;
        free(job);
    }
    self->tail = NULL;
    pthread_mutex_destroy(&self->mutex);
    pthread_cond_destroy(&self->wake);
}

static PyObject *
Syncer_close(Syncer *self, PyObject *Py_UNUSED(ignored))
{
    stop_thread(self);
    Py_RETURN_NONE;
}

static void
Syncer_dealloc(Syncer *self)
{
    stop_thread(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Syncer_methods[] = {
    {"write", (PyCFunction)Syncer_write, METH_VARARGS,
     "write(fd, offset, record, seq): pwrite a copy of record at offset of fd on the syncer's thread, "
     "fdatasync fd, then write (seq, errno) to notify_fd. Writes asked for meanwhile are synced together "
     "and reported once, for the newest seq. After a failed write, every write fails until resume()."},
    {"resume", (PyCFunction)Syncer_resume, METH_NOARGS,
     "Writes asked for from now on are written again (call once the failed record is cut off)."},
    {"close", (PyCFunction)Syncer_close, METH_NOARGS,
     "Stop the thread after any outstanding writes and sync (whose completions are still written)."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Syncer_members[] = {
    {"spin_ns", T_LONGLONG, offsetof(Syncer, spin_ns), READONLY,
     "How long the thread watches for the next write request after each sync before it sleeps."},
    {"watch_ns", T_LONGLONG, offsetof(Syncer, watch_ns), READONLY,
     "How long the thread watches after its next sync: spin_ns, or less after watches that missed."},
    {"wakeups", T_LONGLONG, offsetof(Syncer, wakeups), READONLY,
     "How many write requests found the thread asleep and had to wake it."},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject SyncerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sextant.ingest._syncer.Syncer",
    .tp_basicsize = sizeof(Syncer),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A native thread that writes ingest-log records, fdatasyncs them and reports each completion "
              "to a pipe.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Syncer_init,
    .tp_dealloc = (destructor)Syncer_dealloc,
    .tp_methods = Syncer_methods,
    .tp_members = Syncer_members,
};

static struct PyModuleDef syncer_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "sextant.ingest._syncer",
    .m_doc = "Ingest-log writes and fdatasync on a native thread, with completions reported through a pipe.",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__syncer(void)
{
    if (PyType_Ready(&SyncerType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&syncer_module);
    if (module == NULL) {
        return NULL;
    }
    Py_INCREF(&SyncerType);
    if (PyModule_AddObject(module, "Syncer", (PyObject *)&SyncerType) < 0) {
        Py_DECREF(&SyncerType);
        Py_DECREF(module);
        return NULL;
    }
    if (PyModule_AddIntConstant(module, "COMPLETION_SIZE", (long)sizeof(Completion)) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
