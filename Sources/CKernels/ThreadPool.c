// A persistent pool of compute threads for `Parallel` (Swift): one job at a time, split into
// `count` numbered chunks that the caller and the pool's threads claim from one atomic ticket.
//
// Why not DispatchQueue.concurrentPerform: decoding makes ~40 products of 0.1-0.3 ms per step
// with a little serial work between them. concurrentPerform's workers park between calls, and
// waking a parked thread (here: an idle vCPU) costs a sizeable part of such a product. These
// threads spin for a short while after each job (`spin_ns`) and only then park on a condition
// variable, so back-to-back jobs never wait for a wake-up while an idle process burns no core.
// The spin is short by default (training's calls are long, and a 200 us spin measured ~4% slower
// training steps on the Intel VM); decoders open a latency-bound scope, inside which threads
// spin at least LATENCY_SPIN_NS.
//
// The ticket packs the job's id, its chunk count and the next unclaimed chunk into one 64-bit word,
// so a claim (one fetch-add) can never mix up two jobs: a thread that arrives late at a finished
// job gets an index >= count and claims nothing; one that arrives after the next job was published
// claims a chunk of that job, whose function was written before the ticket (release / acquire).
// A job's function stays valid until `remaining` reaches 0, which waits for every claimed chunk.

#include "CKernels.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define TICKET_ID_SHIFT 40
#define TICKET_COUNT_SHIFT 20
#define TICKET_FIELD_MASK ((UINT64_C(1) << 20) - 1)
#define POOL_MAX_THREADS 256
// Late claims push the index past count by at most one per thread: far below the field's 2^20.
#define POOL_MAX_CHUNKS (1 << 16)
#define POOL_DEFAULT_SPIN_NS 50000L
#define LATENCY_SPIN_NS 200000L

static struct {
    pthread_mutex_t lock;        // guards publishing, parking and thread creation
    pthread_cond_t work_ready;   // pool threads wait here for a new job id
    pthread_cond_t job_done;     // the caller waits here for the last chunk
    int sleepers;                // pool threads parked on work_ready (under lock)
    int caller_sleeping;         // the caller is parked on job_done (under lock)
    int created;                 // pool threads started so far (under lock)
    _Atomic uint64_t ticket;     // id << 40 | count << 20 | next chunk
    _Atomic int remaining;       // chunks of the current job not yet finished
    _Atomic int participants;    // pool threads 0..<participants take part in the current job
    _Atomic int busy;            // 1 while a job runs: nested or concurrent calls run inline
    _Atomic long spin_ns;        // how long a thread spins before parking
    _Atomic int latency_scopes;  // open latency-bound scopes: spin at least LATENCY_SPIN_NS
    void (*fn)(void *context, int index);  // the current job; valid while remaining > 0
    void *context;
} pool = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .work_ready = PTHREAD_COND_INITIALIZER,
    .job_done = PTHREAD_COND_INITIALIZER,
    .spin_ns = POOL_DEFAULT_SPIN_NS,
};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static inline long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static inline uint64_t ticket_id(uint64_t t) { return t >> TICKET_ID_SHIFT; }

/// The spin in effect now: the configured one, raised inside a latency-bound scope.
static inline long current_spin_ns(void) {
    long spin = atomic_load_explicit(&pool.spin_ns, memory_order_relaxed);
    if (atomic_load_explicit(&pool.latency_scopes, memory_order_relaxed) > 0 && spin < LATENCY_SPIN_NS)
        spin = LATENCY_SPIN_NS;
    return spin;
}

/// Claims and runs chunks of whatever job the ticket holds until none is left.
static void run_chunks(void) {
    for (;;) {
        uint64_t t = atomic_fetch_add_explicit(&pool.ticket, 1, memory_order_acquire);
        uint64_t index = t & TICKET_FIELD_MASK, count = (t >> TICKET_COUNT_SHIFT) & TICKET_FIELD_MASK;
        if (index >= count) return;
        pool.fn(pool.context, (int)index);
        if (atomic_fetch_sub_explicit(&pool.remaining, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&pool.lock);
            if (pool.caller_sleeping) pthread_cond_signal(&pool.job_done);
            pthread_mutex_unlock(&pool.lock);
        }
    }
}

/// Waits until the ticket carries a job id other than `seen`: spins first, then parks.
static uint64_t wait_for_job(uint64_t seen) {
    long spin = current_spin_ns();
    long start = now_ns();
    for (;;) {
        for (int i = 0; i < 64; i++) {
            uint64_t t = atomic_load_explicit(&pool.ticket, memory_order_acquire);
            if (ticket_id(t) != seen) return t;
            cpu_relax();
        }
        if (now_ns() - start >= spin) break;
    }
    pthread_mutex_lock(&pool.lock);
    uint64_t t;
    while (ticket_id(t = atomic_load_explicit(&pool.ticket, memory_order_acquire)) == seen) {
        pool.sleepers++;
        pthread_cond_wait(&pool.work_ready, &pool.lock);
        pool.sleepers--;
    }
    pthread_mutex_unlock(&pool.lock);
    return t;
}

struct worker_start {
    int index;
    uint64_t seen;
};

static void *worker_main(void *arg) {
    struct worker_start start = *(struct worker_start *)arg;
    free(arg);
    uint64_t seen = start.seen;
    for (;;) {
        uint64_t t = wait_for_job(seen);
        seen = ticket_id(t);
        if (start.index < atomic_load_explicit(&pool.participants, memory_order_relaxed)) run_chunks();
    }
    return NULL;
}

/// Applies TRANSFORMER_POOL_SPIN_US (run once, by `configure_spin_from_environment`). A value that is
/// not a whole number of microseconds in 0...1000000 is reported on stderr and the default kept.
static void read_spin_from_environment(void) {
    const char *text = getenv("TRANSFORMER_POOL_SPIN_US");
    if (!text || !*text) return;
    char *end = NULL;
    errno = 0;
    long microseconds = strtol(text, &end, 10);
    if (errno != 0 || *end != '\0' || microseconds < 0 || microseconds > 1000000L) {
        fprintf(stderr,
                "warning: TRANSFORMER_POOL_SPIN_US=\"%s\" is not a whole number of microseconds in "
                "0...1000000; the thread pool keeps its default spin of %ld us\n",
                text, (long)(POOL_DEFAULT_SPIN_NS / 1000L));
        return;
    }
    atomic_store_explicit(&pool.spin_ns, microseconds * 1000L, memory_order_relaxed);
}

static pthread_once_t spin_environment_once = PTHREAD_ONCE_INIT;

/// Reads the environment's spin before the first use of the pool or of its spin (and before the
/// setter, so a value set in code wins over the environment).
static void configure_spin_from_environment(void) {
    pthread_once(&spin_environment_once, read_spin_from_environment);
}

/// Starts pool threads up to `wanted` (under pool.lock). Returns how many exist.
static int ensure_threads(int wanted) {
    configure_spin_from_environment();
    if (wanted > POOL_MAX_THREADS) wanted = POOL_MAX_THREADS;
    while (pool.created < wanted) {
        struct worker_start *start = malloc(sizeof *start);
        if (!start) break;
        start->index = pool.created;
        start->seen = ticket_id(atomic_load_explicit(&pool.ticket, memory_order_relaxed));
        pthread_t thread;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&thread, &attr, worker_main, start);
        pthread_attr_destroy(&attr);
        if (failed) {
            free(start);
            break;
        }
        pool.created++;
    }
    return pool.created;
}

void ckernels_pool_run(int threads, int count, void (*fn)(void *context, int index), void *context) {
    if (count <= 0) return;
    int expected = 0;
    if (threads <= 1 || count == 1 || count > POOL_MAX_CHUNKS ||
        !atomic_compare_exchange_strong_explicit(&pool.busy, &expected, 1, memory_order_acquire,
                                                 memory_order_relaxed)) {
        // One thread, one chunk, more chunks than the ticket can count, or the pool is already
        // running a job (a nested call from inside a chunk, or another thread's job): the chunks
        // run here, in order.
        for (int i = 0; i < count; i++) fn(context, i);
        return;
    }
    pthread_mutex_lock(&pool.lock);
    int helpers = ensure_threads(threads - 1);
    if (helpers > count - 1) helpers = count - 1;
    pool.fn = fn;
    pool.context = context;
    atomic_store_explicit(&pool.remaining, count, memory_order_relaxed);
    atomic_store_explicit(&pool.participants, helpers, memory_order_relaxed);
    uint64_t id = (ticket_id(atomic_load_explicit(&pool.ticket, memory_order_relaxed)) + 1) &
                  ((UINT64_C(1) << (64 - TICKET_ID_SHIFT)) - 1);
    atomic_store_explicit(&pool.ticket, id << TICKET_ID_SHIFT | (uint64_t)count << TICKET_COUNT_SHIFT,
                          memory_order_release);
    if (pool.sleepers > 0) pthread_cond_broadcast(&pool.work_ready);
    pthread_mutex_unlock(&pool.lock);

    run_chunks();

    if (atomic_load_explicit(&pool.remaining, memory_order_acquire) != 0) {
        long spin = current_spin_ns();
        long start = now_ns();
        int done = 0;
        while (!done) {
            for (int i = 0; i < 64; i++) {
                if (atomic_load_explicit(&pool.remaining, memory_order_acquire) == 0) {
                    done = 1;
                    break;
                }
                cpu_relax();
            }
            if (!done && now_ns() - start >= spin) break;
        }
        if (!done) {
            pthread_mutex_lock(&pool.lock);
            while (atomic_load_explicit(&pool.remaining, memory_order_acquire) != 0) {
                pool.caller_sleeping = 1;
                pthread_cond_wait(&pool.job_done, &pool.lock);
            }
            pool.caller_sleeping = 0;
            pthread_mutex_unlock(&pool.lock);
        }
    }
    atomic_store_explicit(&pool.busy, 0, memory_order_release);
}

void ckernels_pool_set_spin_microseconds(long microseconds) {
    configure_spin_from_environment();
    atomic_store_explicit(&pool.spin_ns, (microseconds < 0 ? 0 : microseconds) * 1000L, memory_order_relaxed);
}

long ckernels_pool_spin_microseconds(void) {
    configure_spin_from_environment();
    return atomic_load_explicit(&pool.spin_ns, memory_order_relaxed) / 1000L;
}

long ckernels_pool_current_spin_microseconds(void) {
    configure_spin_from_environment();
    return current_spin_ns() / 1000L;
}

void ckernels_pool_begin_latency_bound(void) {
    atomic_fetch_add_explicit(&pool.latency_scopes, 1, memory_order_relaxed);
}

void ckernels_pool_end_latency_bound(void) {
    atomic_fetch_sub_explicit(&pool.latency_scopes, 1, memory_order_relaxed);
}

int ckernels_pool_threads(void) {
    pthread_mutex_lock(&pool.lock);
    int n = pool.created;
    pthread_mutex_unlock(&pool.lock);
    return n;
}

int ckernels_pool_max_threads(void) { return POOL_MAX_THREADS; }
