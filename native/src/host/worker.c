/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Worker threads: poll the queues of their devices. Adaptive polling: spin while there is work and
 * for spin_us after the last of it, then sleep with exponential back-off up to max_sleep_us, so an
 * idle device costs a wake-up per max_sleep_us and nothing more. A worker told to park when idle
 * (synth_worker_park_when_idle) stops waking at all once its devices have been idle that long:
 * one watcher thread for the whole process looks at every parked worker's rings and wakes it on work.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <time.h>

#include "host_pvt.h"
#include "synth/clock_pvt.h"

#define MIN_SLEEP_NS 2000ull
#define HEARTBEAT_NS 1000000ull
#define DEEP_IDLE_AFTER_NS 1000000000ull
/* How often the watcher refreshes parked workers' heartbeats (it looks at their rings more often). */
#define WATCH_BEAT_NS 50000000ull

struct synth_worker {
    pthread_t thread;
    pthread_mutex_t lock;        /* held for a whole poll pass; add/remove take it */
    struct synth_hdev **devs;
    unsigned ndevs;
    unsigned cap;
    _Atomic int stop;
    _Atomic int waiters;         /* add/remove calls waiting for the lock */
    struct synth_worker_params params;
    struct synth_worker_stats stats;
    _Atomic uint64_t park_after_ns;  /* idle this long: park (0: never) */
    uint64_t watch_ns;               /* how often the watcher looks at its devices while parked */
    _Atomic uint64_t kicks;          /* wake-ups asked for; changed under watch.lock only */
    _Atomic int parked;              /* on the watcher's list, changed under watch.lock only */
    unsigned parked_devs;            /* its devices when it parked (an add kicks it out) */
    pthread_cond_t park_cv;          /* waited on with watch.lock */
    struct synth_worker *next_parked;
};

/*
 * The watcher. A parked worker waits on its condition variable, off every timer, with its device
 * list unlocked. Every watch_ns (7/8 of its deep_sleep_us, so that the watcher's wake-up plus the
 * worker's stays within the deep_sleep_us an unparked worker's first op waits at worst) the watcher
 * takes each parked worker's list lock, as add/remove do, and within a fault frame per device
 * (synthi_region_call) refreshes its heartbeat and asks synthi_hdev_pending; a device with work
 * kicks its worker. One thread for all of them rather than the shared workers: those would need
 * each other's locks and fault guards on their hot path, and a busy one would delay the watch.
 *
 * Lock order: watch.lock, then a worker's lock. A worker never holds its own lock while it takes
 * watch.lock (it parks with its lock given back), add/remove/destroy kick only after unlocking.
 * A parked worker is on the list until it has taken watch.lock again, so the watcher never sees a
 * worker that runs, nor one that is gone; remove takes the list lock, so once it returns the
 * watcher no longer touches the device.
 */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t cv;               /* the watcher waits here while nothing is parked */
    struct synth_worker *parked;
    unsigned watched;                /* parked workers with devices: the watcher sleeps while 0 */
    _Atomic uint64_t rounds;         /* looks done (synth_worker_watch_rounds) */
    int started;
    int nice, cpu;                   /* those of the first worker that asked to park */
} watch = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0, 0, 0, 0, -1};


static void sleep_ns(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000ull), .tv_nsec = (long)(ns % 1000000000ull)};
    nanosleep(&ts, NULL);
}

/*
 * A region is a file its VM's QEMU owns: QEMU (or whoever controls it) can truncate it, and the
 * next access of ours to the lost pages raises SIGBUS. That must cost the one device, never the
 * process: while a worker polls, a fault on an address inside one of its devices' regions jumps
 * back to the top of its loop, which abandons that device (synthi_hdev_region_fault) and goes on
 * with the others. Any other SIGBUS goes to the handler that was there before us, or kills the
 * process as it would have without us.
 */
struct fault_guard {
    sigjmp_buf env;
    struct synth_worker *w;          /* set while the worker polls with its lock held */
    struct synth_hdev *faulted;
    struct synth_hdev *polling;      /* the device whose pass is running */
    pthread_mutex_t *held;           /* a lock taken while touching regions (synthi_fault_hold) */
};

static __thread struct fault_guard guard;
static struct sigaction prev_sigbus;

/*
 * Every other touch of a region, on any thread (the control thread laying a region out,
 * re-attaching it, publishing a link, destroying a device; a worker touching a wire peer's region)
 * runs inside a frame for that region (synthi_region_call): a fault there ends the frame, costs
 * that device, and the caller carries on. Frames nest; the innermost one whose region holds the
 * address takes the fault, and the locks that frames above it held are given back.
 */
struct fault_frame {
    sigjmp_buf env;
    struct synth_hdev *dev;
    pthread_mutex_t *held;
    struct fault_frame *prev;
};

static __thread struct fault_frame *frames;

static void unwind_frames(struct fault_frame *to)
{
    while (frames != to) {
        if (frames->held)
            pthread_mutex_unlock(frames->held);
        frames = frames->prev;
    }
}

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
    struct synth_worker *w = guard.w;
    struct fault_frame *f;
    unsigned i;

    for (f = frames; f; f = f->prev) {
        if (synthi_hdev_owns(f->dev, si->si_addr)) {
            unwind_frames(f);
            frames = f->prev;
            siglongjmp(f->env, 1);
        }
    }
    if (w) {
        for (i = 0; i < w->ndevs; i++) {
            if (synthi_hdev_owns(w->devs[i], si->si_addr)) {
                unwind_frames(NULL);
                guard.w = NULL;
                guard.faulted = w->devs[i];
                siglongjmp(guard.env, 1);
            }
        }
    }
    if (prev_sigbus.sa_flags & SA_SIGINFO) {
        prev_sigbus.sa_sigaction(sig, si, uc);
    } else if (prev_sigbus.sa_handler != SIG_DFL && prev_sigbus.sa_handler != SIG_IGN) {
        prev_sigbus.sa_handler(sig);
    } else {
        signal(SIGBUS, SIG_DFL); /* returning re-runs the access: now fatal, as without us */
    }
}

static void install_sigbus_once(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, &prev_sigbus);
}

static pthread_once_t sigbus_once = PTHREAD_ONCE_INIT;

void synthi_fault_hold(pthread_mutex_t *m)
{
    if (frames)
        frames->held = m;
    else
        guard.held = m;
}

void synthi_fault_release(void)
{
    if (frames)
        frames->held = NULL;
    else
        guard.held = NULL;
}

static void unblock_sigbus(void);

int synthi_region_call(struct synth_hdev *d, int (*fn)(struct synth_hdev *, void *), void *arg)
{
    struct fault_frame f;
    int rc;

    if (d->faulted)
        return -EFAULT;
    pthread_once(&sigbus_once, install_sigbus_once);
    f.dev = d;
    f.held = NULL;
    f.prev = frames;
    if (sigsetjmp(f.env, 0)) { /* on_sigbus unwound the frames down to f's caller */
        unblock_sigbus();
        synthi_hdev_region_fault(d);
        return -EFAULT;
    }
    frames = &f;
    rc = fn(d, arg);
    frames = f.prev;
    return rc;
}

/* With watch.lock held: ask w for a pass (a parked worker wakes; a running one does not park next). */
static void kick_locked(struct synth_worker *w)
{
    atomic_fetch_add(&w->kicks, 1);
    pthread_cond_signal(&w->park_cv);
}

static void kick(struct synth_worker *w)
{
    pthread_mutex_lock(&watch.lock);
    kick_locked(w);
    pthread_mutex_unlock(&watch.lock);
}

/*
 * On w's own thread, its list unlocked: wait on the watcher's list until kicked or stopped. kick0 and
 * ndevs are w->kicks and w->ndevs as read with the list locked, after the pass that found nothing: a
 * kick since (a device added) means no waiting at all, so no wake-up is lost between that pass and
 * the wait. A worker that parked with no device costs the watcher nothing: while no parked worker
 * has one, the watcher waits off every timer too.
 */
static void park(struct synth_worker *w, uint64_t kick0, unsigned ndevs)
{
    struct synth_worker **pp;

    pthread_mutex_lock(&watch.lock);
    if (atomic_load(&w->kicks) == kick0 && !atomic_load(&w->stop)) {
        w->parked_devs = ndevs;
        if (ndevs && !watch.watched++)
            pthread_cond_signal(&watch.cv);
        w->next_parked = watch.parked;
        watch.parked = w;
        atomic_store(&w->parked, 1);
        while (atomic_load(&w->kicks) == kick0 && !atomic_load(&w->stop))
            pthread_cond_wait(&w->park_cv, &watch.lock);
        for (pp = &watch.parked; *pp != w; pp = &(*pp)->next_parked)
            ;
        *pp = w->next_parked;
        if (ndevs)
            watch.watched--;
        atomic_store(&w->parked, 0);
    }
    pthread_mutex_unlock(&watch.lock);
}

/* Can w park: every device it still serves watchable, none in the middle of a driver reset? */
static int parkable(const struct synth_worker *w)
{
    unsigned i;
    for (i = 0; i < w->ndevs; i++) {
        const struct synth_hdev *d = w->devs[i];
        if (!d->faulted && (!synthi_hdev_watchable(d) || d->resetting))
            return 0;
    }
    return 1;
}

static int watch_dev(struct synth_hdev *d, void *beat_ns)
{
    if (*(const uint64_t *)beat_ns)
        synthi_hdev_heartbeat(d, *(const uint64_t *)beat_ns);
    return synthi_hdev_pending(d);
}

/*
 * On the watcher, watch.lock held, w parked: refresh the heartbeats of w's devices to beat (unless
 * 0: every WATCH_BEAT_NS only, a store to another line of each header) and see whether one has
 * work. A region that faults costs its device, as in w's own pass. Returns 1 if w should wake.
 */
static int watch_worker(struct synth_worker *w, uint64_t beat)
{
    unsigned i;
    int rc, work = 0;

    pthread_mutex_lock(&w->lock);
    for (i = 0; i < w->ndevs; i++) {
        if (w->devs[i]->faulted)
            continue;
        rc = synthi_region_call(w->devs[i], watch_dev, &beat);
        if (rc == -EFAULT)
            SYNTH_STAT_ADD(w->stats.region_faults, 1);
        else if (rc > 0)
            work = 1;
    }
    pthread_mutex_unlock(&w->lock);
    return work;
}

static void *watcher_main(void *arg)
{
    struct synth_worker *w;
    uint64_t period, now, beat, last_beat = 0;

    (void)arg;
    pthread_setname_np(pthread_self(), "synth-watcher"); /* its time is the workers' idle cost */
    pthread_mutex_lock(&watch.lock);
    if (watch.nice)
        setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), watch.nice);
    if (watch.cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(watch.cpu, &set);
        pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    }
    for (;;) {
        while (!watch.watched)
            pthread_cond_wait(&watch.cv, &watch.lock);
        period = UINT64_MAX;
        for (w = watch.parked; w; w = w->next_parked)
            if (w->parked_devs && w->watch_ns < period)
                period = w->watch_ns;
        pthread_mutex_unlock(&watch.lock);
        sleep_ns(period);
        pthread_mutex_lock(&watch.lock);
        now = synthi_now_ns();
        beat = now - last_beat >= WATCH_BEAT_NS ? now : 0;
        if (beat)
            last_beat = now;
        for (w = watch.parked; w; w = w->next_parked)
            if (atomic_load(&w->parked) && w->parked_devs && watch_worker(w, beat))
                kick_locked(w);
        atomic_fetch_add_explicit(&watch.rounds, 1, memory_order_relaxed);
    }
    return NULL;
}

int synth_worker_park_when_idle(struct synth_worker *w, uint32_t idle_ms)
{
    pthread_attr_t attr;
    pthread_t t;
    int rc = 0;

    pthread_mutex_lock(&watch.lock);
    if (idle_ms && !watch.started) {
        watch.nice = w->params.nice;
        watch.cpu = w->params.cpu;
        rc = pthread_attr_init(&attr);
        if (!rc) {
            pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
            rc = pthread_create(&t, &attr, watcher_main, NULL);
            pthread_attr_destroy(&attr);
        }
        watch.started = rc == 0;
    }
    pthread_mutex_unlock(&watch.lock);
    if (rc)
        return -rc;
    atomic_store(&w->park_after_ns, (uint64_t)idle_ms * 1000000ull);
    if (!idle_ms)
        kick(w); /* parked: back to sleeping on timers */
    return 0;
}

int synth_worker_parked(const struct synth_worker *w)
{
    return atomic_load(&w->parked);
}

uint64_t synth_worker_watch_rounds(void)
{
    return atomic_load_explicit(&watch.rounds, memory_order_relaxed);
}

static void heartbeat_all(struct synth_worker *w, uint64_t t)
{
    unsigned i;
    for (i = 0; i < w->ndevs; i++)
        synthi_hdev_heartbeat(w->devs[i], t);
}

static void unblock_sigbus(void)
{
    sigset_t bus;
    sigemptyset(&bus);
    sigaddset(&bus, SIGBUS);
    pthread_sigmask(SIG_UNBLOCK, &bus, NULL);
}

static int beat(struct synth_hdev *x, void *now_ns)
{
    synthi_hdev_heartbeat(x, *(const uint64_t *)now_ns);
    return 0;
}

void synthi_hdev_heartbeat_all(struct synth_hdev *d, uint64_t now_ns)
{
    /* Called by d's own worker thread while it polls d, so the device list is stable (locked). */
    struct synth_worker *w = atomic_load_explicit(&d->owner, memory_order_relaxed);
    volatile unsigned i;

    if (!w || guard.w != w) {
        synthi_hdev_heartbeat(d, now_ns);
        return;
    }
    for (i = 0; i < w->ndevs; i++) {
        struct synth_hdev *x = w->devs[i];
        if (x == d) {
            synthi_hdev_heartbeat(d, now_ns);
            continue;
        }
        /* Another device's region faulting here costs that device, not d's pass in progress. */
        if (!x->faulted && synthi_region_call(x, beat, &now_ns) == -EFAULT)
            SYNTH_STAT_ADD(w->stats.region_faults, 1);
    }
}

static void *worker_main(void *arg)
{
    struct synth_worker *w = arg;
    const uint64_t spin_ns = (uint64_t)w->params.spin_us * 1000ull;
    const uint64_t max_sleep = (uint64_t)w->params.max_sleep_us * 1000ull;
    const uint64_t deep_sleep = (uint64_t)w->params.deep_sleep_us * 1000ull;
    uint64_t idle_start = 0, last_beat = 0, nap = MIN_SLEEP_NS, t, park_after, kick0;
    uint32_t idle_passes = 0, busy_passes = 0;
    unsigned i, work, slept = 0;

    /* Idle sleeps are short; do not let the kernel stretch them by the default 50 us slack. */
    prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
    pthread_setname_np(pthread_self(), "synth-worker");
    if (w->params.nice) /* Linux: the nice value of this thread alone */
        setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), w->params.nice);
    if (w->params.cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(w->params.cpu, &set);
        pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    }

    /*
     * The device list lock is held while polling and handed over only when add/remove asks for it
     * (waiters) or when the thread sleeps: an uncontended lock per pass would still be a cost on the
     * path from a guest's submission to its completion. Region faults land here with the lock held
     * (see on_sigbus); the loop's state starts afresh after one.
     */
    pthread_mutex_lock(&w->lock);
    if (sigsetjmp(guard.env, 0)) {
        unblock_sigbus();
        if (guard.held) { /* the fault left a lock of ours taken: give it back */
            pthread_mutex_unlock(guard.held);
            guard.held = NULL;
        }
        synthi_hdev_region_fault(guard.faulted);
        SYNTH_STAT_ADD(w->stats.region_faults, 1);
        guard.w = w; /* a fault while we answer for the polled device is that device's own */
        if (guard.polling && guard.polling != guard.faulted)
            synthi_hdev_abort_inhand(guard.polling); /* a wire peer's fault cut its pass short */
        guard.polling = NULL;
        idle_start = last_beat = 0;
        nap = MIN_SLEEP_NS;
        idle_passes = busy_passes = slept = 0;
    }
    guard.w = w;
    while (!atomic_load_explicit(&w->stop, memory_order_relaxed)) {
        if (atomic_load_explicit(&w->waiters, memory_order_acquire)) {
            guard.w = NULL;
            pthread_mutex_unlock(&w->lock);
            while (atomic_load_explicit(&w->waiters, memory_order_acquire))
                sched_yield();
            pthread_mutex_lock(&w->lock);
            guard.w = w;
        }
        work = 0;
        for (i = 0; i < w->ndevs; i++) {
            guard.polling = w->devs[i];
            work += synthi_hdev_poll_burst(w->devs[i], w->params.burst);
        }
        guard.polling = NULL;
        SYNTH_STAT_ADD(w->stats.passes, 1);

        if (work) {
            SYNTH_STAT_ADD(w->stats.busy_passes, 1);
            SYNTH_STAT_ADD(w->stats.ops, work);
            idle_passes = slept = 0;
            idle_start = 0;
            nap = MIN_SLEEP_NS;
            if ((++busy_passes & 63u) == 0 && (t = synthi_now_ns()) - last_beat >= HEARTBEAT_NS) {
                heartbeat_all(w, t);
                last_beat = t;
            }
            continue;
        }
        /*
         * Idle, spinning: read the clock only every 64 passes; the spin window need not be exact.
         * Once it has slept, one pass per wake-up: 64 passes over every device per wake-up made an
         * idle worker's cost grow with its devices times 64 (bench/scale).
         */
        if (!slept && (++idle_passes & 63u) != 0) {
            synthi_cpu_relax();
            continue;
        }
        t = synthi_now_ns();
        if (!idle_start)
            idle_start = t;
        if (t - last_beat >= HEARTBEAT_NS) {
            heartbeat_all(w, t);
            last_beat = t;
        }
        if (t - idle_start < spin_ns)
            continue;
        park_after = atomic_load_explicit(&w->park_after_ns, memory_order_relaxed);
        if (park_after && t - idle_start >= park_after && parkable(w)) {
            kick0 = atomic_load(&w->kicks);
            SYNTH_STAT_ADD(w->stats.sleeps, 1); /* a park is one idle sleep, however long */
            guard.w = NULL;
            i = w->ndevs;
            pthread_mutex_unlock(&w->lock);
            park(w, kick0, i);
            pthread_mutex_lock(&w->lock);
            guard.w = w;
            idle_start = 0; /* woken for work: spin and back off afresh */
            nap = MIN_SLEEP_NS;
            idle_passes = slept = 0;
            continue;
        }
        SYNTH_STAT_ADD(w->stats.sleeps, 1);
        slept = 1;
        guard.w = NULL;
        pthread_mutex_unlock(&w->lock);
        sleep_ns(nap);
        pthread_mutex_lock(&w->lock);
        guard.w = w;
        /* Back off to max_sleep; after a second of idleness, further to deep_sleep. */
        nap *= 2;
        if (t - idle_start < DEEP_IDLE_AFTER_NS) {
            if (nap > max_sleep)
                nap = max_sleep;
        } else if (nap > deep_sleep) {
            nap = deep_sleep;
        }
    }
    guard.w = NULL;
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

int synth_worker_create(const struct synth_worker_params *p, struct synth_worker **out)
{
    struct synth_worker *w;
    int rc;

    if (p->burst > SYNTH_MAX_BURST)
        return -EINVAL;
    pthread_once(&sigbus_once, install_sigbus_once);
    w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->params = *p;
    if (!w->params.burst)
        w->params.burst = 32;
    if (!w->params.spin_us)
        w->params.spin_us = 50;
    if (!w->params.max_sleep_us)
        w->params.max_sleep_us = 1000;
    if (!w->params.deep_sleep_us)
        w->params.deep_sleep_us = 10000;
    if (w->params.deep_sleep_us < w->params.max_sleep_us)
        w->params.deep_sleep_us = w->params.max_sleep_us;
    w->watch_ns = (uint64_t)w->params.deep_sleep_us * 1000ull;
    w->watch_ns -= w->watch_ns / 8;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->park_cv, NULL);
    rc = pthread_create(&w->thread, NULL, worker_main, w);
    if (rc) {
        pthread_cond_destroy(&w->park_cv);
        pthread_mutex_destroy(&w->lock);
        free(w);
        return -rc;
    }
    *out = w;
    return 0;
}

static void list_lock(struct synth_worker *w)
{
    atomic_fetch_add_explicit(&w->waiters, 1, memory_order_acq_rel);
    pthread_mutex_lock(&w->lock);
}

static void list_unlock(struct synth_worker *w)
{
    pthread_mutex_unlock(&w->lock);
    atomic_fetch_sub_explicit(&w->waiters, 1, memory_order_acq_rel);
}

int synth_worker_add(struct synth_worker *w, struct synth_hdev *d)
{
    struct synth_worker *none = NULL;
    int rc = 0;

    if (!atomic_compare_exchange_strong(&d->owner, &none, w))
        return -EBUSY;
    list_lock(w);
    if (w->ndevs == w->cap) {
        unsigned cap = w->cap ? w->cap * 2 : 8;
        struct synth_hdev **devs = realloc(w->devs, cap * sizeof(*devs));
        if (!devs) {
            rc = -ENOMEM;
            atomic_store(&d->owner, NULL);
            goto out;
        }
        w->devs = devs;
        w->cap = cap;
    }
    w->devs[w->ndevs++] = d;
    SYNTH_STAT_SET(w->stats.devices, w->ndevs);
out:
    list_unlock(w);
    if (!rc)
        kick(w); /* a parked worker makes a pass over it (it may be one no watcher can watch) */
    return rc;
}

int synth_worker_remove(struct synth_worker *w, struct synth_hdev *d)
{
    unsigned i;
    int rc = -ENOENT;

    list_lock(w);
    for (i = 0; i < w->ndevs; i++) {
        if (w->devs[i] == d) {
            memmove(&w->devs[i], &w->devs[i + 1], (w->ndevs - i - 1) * sizeof(*w->devs));
            w->ndevs--;
            atomic_store(&d->owner, NULL);
            rc = 0;
            break;
        }
    }
    SYNTH_STAT_SET(w->stats.devices, w->ndevs);
    list_unlock(w);
    return rc;
}

void synth_worker_get_stats(const struct synth_worker *w, struct synth_worker_stats *st)
{
    st->passes = __atomic_load_n(&w->stats.passes, __ATOMIC_RELAXED);
    st->busy_passes = __atomic_load_n(&w->stats.busy_passes, __ATOMIC_RELAXED);
    st->sleeps = __atomic_load_n(&w->stats.sleeps, __ATOMIC_RELAXED);
    st->ops = __atomic_load_n(&w->stats.ops, __ATOMIC_RELAXED);
    st->devices = __atomic_load_n(&w->stats.devices, __ATOMIC_RELAXED);
    st->reserved = 0;
    st->region_faults = __atomic_load_n(&w->stats.region_faults, __ATOMIC_RELAXED);
}

void synth_worker_destroy(struct synth_worker *w)
{
    unsigned i;
    if (!w)
        return;
    atomic_store(&w->stop, 1);
    kick(w);
    pthread_join(w->thread, NULL);
    for (i = 0; i < w->ndevs; i++)
        atomic_store(&w->devs[i]->owner, NULL);
    pthread_cond_destroy(&w->park_cv);
    pthread_mutex_destroy(&w->lock);
    free(w->devs);
    free(w);
}

static int poll_once(struct synth_hdev *d, void *arg)
{
    (void)arg;
    return (int)synthi_hdev_poll_burst(d, 32);
}

unsigned synth_hdev_poll(struct synth_hdev *d)
{
    int n = synthi_region_call(d, poll_once, NULL);
    return n < 0 ? 0 : (unsigned)n;
}
