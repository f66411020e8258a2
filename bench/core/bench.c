/*
 * The core's cost and latency, measured through the C API against a real Eureka server on
 * loopback (scripts/bench-core.sh starts one and passes its URL). Prints figures, asserts
 * nothing; bench/core/README.md explains the method and records results.
 *
 *   bench URL [rounds]            all measurements below
 *   bench URL --heartbeats N      register, wait for N heartbeats at 20 ms, stop (for callgrind)
 *   bench URL --many              section 8 alone
 *   bench URL --cpu [ROUNDS]      section 2 (CPU per heartbeat) alone, ROUNDS rounds (default 3)
 *   bench URL --memory            section 1 alone (a fresh process per run: the first client's
 *                                 figure holds only once per process)
 *
 * 1. Memory and threads of one running client: VmRSS / RssAnon / Threads from
 *    /proc/self/status before the client, after new, after start + registration + some
 *    heartbeats, and after free. The first client in a process also pays one-time library
 *    initialisation, so a second client is measured the same way.
 * 2. CPU per heartbeat: getrusage(RUSAGE_SELF) user+system over a fixed window while a client
 *    heartbeats every 20 ms, minus the same window with a registered client that sends nothing
 *    (30 s interval), divided by the heartbeats the registry accepted in the window.
 * 3. Connection reuse: while a client heartbeats every 20 ms, the process's TCP sockets to the
 *    registry port are sampled from /proc/net/tcp (matched to our fds by inode); the number of
 *    distinct local ports is the number of connections used.
 * 4. start -> visible UP: status UP preset, registrar_client_start, then wait_registered, then
 *    GET apps/APP/ID (uncached on the server) must show UP; both times from start. Median.
 * 5. stop -> gone: registrar_client_stop, then GET apps/APP/ID must answer 404. Median.
 * 8. Many handles in one process: 1,000 clients (status UP) + 10 discovery caches against the
 *    same real server. Threads and RSS before/after; start -> all 1,000 UP in GET apps/APP;
 *    stop (from 50 host threads at once) -> none left in GET apps/APP; lookups through the C
 *    API (registrar_discovery_choose + reading the instance + list free; choose_url) on a
 *    cache holding them.
 */
#include "testutil.h"

#include <dirent.h>
#include <pthread.h>
#include <netinet/tcp.h>
#include <sys/resource.h>

#define APP "BENCH_CORE"

static const char *url;
static int server_port;

/* ---- /proc -------------------------------------------------------------------------------- */

struct proc_status {
    long rss_kib, anon_kib, threads;
};

static struct proc_status read_status(void) {
    struct proc_status s = {0, 0, 0};
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f)) {
        sscanf(line, "VmRSS: %ld", &s.rss_kib);
        sscanf(line, "RssAnon: %ld", &s.anon_kib);
        sscanf(line, "Threads: %ld", &s.threads);
    }
    if (f) fclose(f);
    return s;
}

/* Inodes of this process's sockets. */
static int our_socket_inodes(unsigned long *inodes, int max) {
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    char path[300], target[128];
    while (d && (e = readdir(d)) && n < max) {
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t len = readlink(path, target, sizeof target - 1);
        if (len <= 0) continue;
        target[len] = 0;
        unsigned long inode;
        if (sscanf(target, "socket:[%lu]", &inode) == 1) inodes[n++] = inode;
    }
    if (d) closedir(d);
    return n;
}

/* Adds the local ports of our TCP connections to the registry port to `ports` (a set). */
static void sample_connections(int *ports, int *nports, int max) {
    unsigned long inodes[256];
    int ninodes = our_socket_inodes(inodes, 256);
    const char *files[] = {"/proc/self/net/tcp", "/proc/self/net/tcp6"};
    for (int fi = 0; fi < 2; fi++) {
        FILE *f = fopen(files[fi], "r");
        char line[512];
        if (!f) continue;
        if (!fgets(line, sizeof line, f)) { /* header */
            fclose(f);
            continue;
        }
        while (fgets(line, sizeof line, f)) {
            char local[64], remote[64];
            unsigned st;
            unsigned long inode;
            /* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
            if (sscanf(line, "%*d: %63s %63s %x %*s %*s %*s %*d %*d %lu", local, remote, &st,
                       &inode) != 4)
                continue;
            char *lp = strrchr(local, ':'), *rp = strrchr(remote, ':');
            if (!lp || !rp || (int)strtol(rp + 1, NULL, 16) != server_port) continue;
            int mine = 0;
            for (int i = 0; i < ninodes; i++) mine |= inodes[i] == inode;
            if (!mine) continue;
            int port = (int)strtol(lp + 1, NULL, 16), known = 0;
            for (int i = 0; i < *nports; i++) known |= ports[i] == port;
            if (!known && *nports < max) ports[(*nports)++] = port;
        }
        fclose(f);
    }
}

/* ---- clients ----------------------------------------------------------------------------- */

static int seq;

static registrar_client *new_client(const char *interval, char *id, size_t id_len) {
    snprintf(id, id_len, "bench-%ld-%d", (long)getpid(), ++seq);
    registrar_config *cfg = NULL;
    registrar_client *c = NULL;
    if (registrar_config_new(&cfg) != REGISTRAR_OK) abort();
    registrar_config_set(cfg, "url", url);
    registrar_config_set(cfg, "app_name", APP);
    registrar_config_set(cfg, "instance_id", id);
    registrar_config_set(cfg, "hostname", "127.0.0.1");
    registrar_config_set(cfg, "ip_address", "127.0.0.1");
    registrar_config_set(cfg, "heartbeat_interval", interval);
    registrar_config_set(cfg, "lease_duration", "90");
    if (registrar_client_new(cfg, &c) != REGISTRAR_OK) {
        fprintf(stderr, "bench: client_new: %s\n", tu_last_error());
        exit(1);
    }
    registrar_config_free(cfg);
    return c;
}

static void start_up(registrar_client *c) {
    registrar_client_set_status(c, REGISTRAR_INSTANCE_UP);
    registrar_client_start(c);
    if (registrar_client_wait_registered(c, 10000) != REGISTRAR_OK) {
        fprintf(stderr, "bench: not registered: %s\n", tu_last_error());
        exit(1);
    }
}

static uint64_t heartbeats(registrar_client *c) {
    registrar_client_info info;
    registrar_client_get_info(c, &info);
    return info.heartbeats;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static const char *verdict(int ok) { return ok ? "target met" : "TARGET MISSED"; }

/* ---- the measurements ------------------------------------------------------------------- */

static void memory_and_threads(void) {
    printf("\n## 1. memory and threads of one running client (KiB; file = library code paged in)\n");
    long first_rss = 0, first_anon = 0;
    for (int round = 1; round <= 2; round++) {
        char id[64];
        struct proc_status before = read_status();
        registrar_client *c = new_client("1", id, sizeof id);
        struct proc_status created = read_status();
        start_up(c);
        tu_sleep_ms(2500); /* two heartbeats at 1 s */
        struct proc_status running = read_status();
        uint64_t beats = heartbeats(c);
        registrar_client_stop(c, 5000);
        registrar_client_free(c);
        struct proc_status after = read_status();
        long rss = running.rss_kib - before.rss_kib, anon = running.anon_kib - before.anon_kib;
        printf("%s client in the process: before: rss %ld (anon %ld, file %ld), %ld thread(s)\n"
               "    after new:   rss %+ld (anon %+ld, file %+ld), threads %+ld\n"
               "    running (%llu heartbeats): rss %+ld (anon %+ld, file %+ld), threads %+ld\n"
               "    after stop + free: rss %+ld, threads %+ld\n",
               round == 1 ? "first" : "second", before.rss_kib, before.anon_kib,
               before.rss_kib - before.anon_kib, before.threads, created.rss_kib - before.rss_kib,
               created.anon_kib - before.anon_kib,
               (created.rss_kib - created.anon_kib) - (before.rss_kib - before.anon_kib),
               created.threads - before.threads, (unsigned long long)beats, rss, anon, rss - anon,
               running.threads - before.threads, after.rss_kib - before.rss_kib,
               after.threads - before.threads);
        if (round == 1) {
            first_rss = rss;
            first_anon = anon;
        } else {
            printf("RESULT threads_added=%ld (target 1: %s)\n", running.threads - before.threads,
                   verdict(running.threads - before.threads <= 1));
            printf("RESULT rss_added_kib: first client %ld (anon %ld + library code %ld), another "
                   "client %ld (anon %ld) (target < 2048: first client %s, anon %s, another "
                   "client %s)\n",
                   first_rss, first_anon, first_rss - first_anon, rss, anon,
                   verdict(first_rss < 2048), verdict(first_anon < 2048), verdict(rss < 2048));
        }
    }
}

struct cpu {
    double user_ms, sys_ms;
    long vcsw, ivcsw;
};

static struct cpu cpu_now(int who) {
    struct rusage ru;
    getrusage(who, &ru);
    struct cpu c = {ru.ru_utime.tv_sec * 1e3 + ru.ru_utime.tv_usec / 1e3,
                    ru.ru_stime.tv_sec * 1e3 + ru.ru_stime.tv_usec / 1e3, ru.ru_nvcsw,
                    ru.ru_nivcsw};
    return c;
}

static struct cpu cpu_diff(struct cpu a, struct cpu b) {
    struct cpu d = {b.user_ms - a.user_ms, b.sys_ms - a.sys_ms, b.vcsw - a.vcsw,
                    b.ivcsw - a.ivcsw};
    return d;
}

/*
 * The floor on this machine: the same heartbeat (PUT apps/APP/ID) sent by hand over one
 * kept-alive socket from this thread, every 20 ms, counted with RUSAGE_THREAD. No HTTP library,
 * no second thread: what any client must pay in syscalls and loopback TCP here.
 */
static int raw_connect(void) {
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)server_port);
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(fd);
        return -1;
    }
    int one = 1; /* as registrar does (tcp_nodelay) */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static long raw_heartbeats(const char *id, long window_ms, struct cpu *used, int *connections) {
    const char *prefix = strchr(url + 7, '/');
    char req[512], resp[4096];
    int len = snprintf(req, sizeof req,
                       "PUT %sapps/%s/%s?status=UP HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                       "Accept: application/json\r\nContent-Length: 0\r\n\r\n",
                       prefix, APP, id, server_port);
    long ok = 0;
    int fd = -1;
    *connections = 0;
    struct cpu c0 = cpu_now(RUSAGE_THREAD);
    double end = tu_now_ms() + window_ms;
    while (tu_now_ms() < end) {
        if (fd < 0) { /* Tomcat closes a keep-alive connection after 100 requests */
            if ((fd = raw_connect()) < 0) break;
            ++*connections;
        }
        size_t got = 0;
        resp[0] = 0;
        if (send(fd, req, (size_t)len, MSG_NOSIGNAL) == len) {
            while (!strstr(resp, "\r\n\r\n") && got < sizeof resp - 1) {
                ssize_t r = recv(fd, resp + got, sizeof resp - 1 - got, 0);
                if (r <= 0) break;
                got += (size_t)r;
                resp[got] = 0;
            }
        }
        /* Eureka answers a renewal with 200 and Content-Length: 0. */
        if (strncmp(resp, "HTTP/1.1 200", 12) == 0 && tu_contains(resp, "Content-Length: 0"))
            ok++;
        if (got == 0 || tu_contains(resp, "Connection: close")) {
            close(fd);
            fd = -1;
            if (got == 0) continue; /* the server had closed it: resend on a new one */
        }
        tu_sleep_ms(20);
    }
    *used = cpu_diff(c0, cpu_now(RUSAGE_THREAD));
    if (fd >= 0) close(fd);
    return ok;
}

static void cpu_per_heartbeat(int rounds) {
    printf("\n## 2. CPU per heartbeat (getrusage over 4 s windows; 20 ms interval)\n");
    const long window_ms = 4000;
    double per[16], raw_per[16];
    int n = 0;
    for (int r = 0; r < rounds && n < 16; r++) {
        char id[64];
        /* A registered client with nothing to send in the window: its idle cost. */
        registrar_client *idle = new_client("30", id, sizeof id);
        start_up(idle);
        tu_sleep_ms(200);
        struct cpu c0 = cpu_now(RUSAGE_SELF);
        tu_sleep_ms(window_ms);
        struct cpu idle_cpu = cpu_diff(c0, cpu_now(RUSAGE_SELF));
        /* The hand-written reference heartbeats the same instance. */
        struct cpu raw_cpu = {0, 0, 0, 0};
        int raw_conns = 0;
        long raw = raw_heartbeats(id, window_ms, &raw_cpu, &raw_conns);
        registrar_client_stop(idle, 5000);
        registrar_client_free(idle);

        registrar_client *busy = new_client("0.02", id, sizeof id);
        start_up(busy);
        tu_sleep_ms(200);
        uint64_t h0 = heartbeats(busy);
        c0 = cpu_now(RUSAGE_SELF);
        tu_sleep_ms(window_ms);
        struct cpu busy_cpu = cpu_diff(c0, cpu_now(RUSAGE_SELF));
        uint64_t beats = heartbeats(busy) - h0;
        registrar_client_stop(busy, 5000);
        registrar_client_free(busy);
        if (beats == 0 || raw <= 0) continue;
        double total = busy_cpu.user_ms + busy_cpu.sys_ms - idle_cpu.user_ms - idle_cpu.sys_ms;
        per[n] = total * 1000.0 / (double)beats;
        raw_per[n] = (raw_cpu.user_ms + raw_cpu.sys_ms) * 1000.0 / (double)raw;
        printf("round %d: registrar %llu heartbeats: user %.1f + sys %.1f ms (idle client %.1f ms), "
               "%.1f context switches each -> %.0f us/heartbeat | raw socket %ld heartbeats (%d "
               "connections): user %.1f + sys %.1f ms -> %.0f us/heartbeat | ratio %.1fx\n",
               r + 1, (unsigned long long)beats, busy_cpu.user_ms, busy_cpu.sys_ms,
               idle_cpu.user_ms + idle_cpu.sys_ms,
               (double)(busy_cpu.vcsw + busy_cpu.ivcsw) / (double)beats, per[n], raw, raw_conns,
               raw_cpu.user_ms, raw_cpu.sys_ms, raw_per[n], per[n] / raw_per[n]);
        n++;
    }
    if (n) {
        double m = median(per, n), mr = median(raw_per, n);
        printf("RESULT cpu_per_heartbeat_us=%.0f (median of %d); hand-written raw-socket keep-alive "
               "heartbeat on this machine, same rounds: %.0f us; ratio registrar/floor %.2fx "
               "(target <= 1.5x: %s)\n",
               m, n, mr, m / mr, verdict(m / mr <= 1.5));
    }
}

/* For callgrind (scripts/bench-core.sh): exactly `count` heartbeats at 20 ms, then stop. The
 * instruction count of two runs with different counts, subtracted, gives instructions per
 * heartbeat independent of this machine's timing. */
static int count_heartbeats(long count) {
    char id[64];
    registrar_client *c = new_client("0.02", id, sizeof id);
    start_up(c);
    /* Poll rarely: every call here would be counted as heartbeat cost. */
    while (heartbeats(c) < (uint64_t)count) tu_sleep_ms(200);
    registrar_client_stop(c, 10000);
    registrar_client_info info;
    registrar_client_get_info(c, &info);
    registrar_client_free(c);
    printf("heartbeats=%llu registrations=%llu\n", (unsigned long long)info.heartbeats,
           (unsigned long long)info.registrations);
    return 0;
}

static void connection_reuse(void) {
    printf("\n## 3. connections used for heartbeats (sockets to port %d sampled every 10 ms)\n",
           server_port);
    char id[64];
    int ports[64], nports = 0, samples = 0;
    registrar_client *c = new_client("0.02", id, sizeof id);
    start_up(c);
    sample_connections(ports, &nports, 64);
    uint64_t h0 = heartbeats(c);
    double end = tu_now_ms() + 6000; /* > 100 heartbeats: see the keep-alive limit below */
    while (tu_now_ms() < end) {
        sample_connections(ports, &nports, 64);
        samples++;
        tu_sleep_ms(10);
    }
    uint64_t beats = heartbeats(c) - h0;
    registrar_client_stop(c, 5000);
    registrar_client_free(c);
    printf("%llu heartbeats, %d samples, distinct local ports:", (unsigned long long)beats,
           samples);
    for (int i = 0; i < nports; i++) printf(" %d", ports[i]);
    /* Tomcat (Spring Boot's default server.tomcat.max-keep-alive-requests=100) closes a
     * keep-alive connection after 100 requests, so a reused connection carries ~100. */
    long requests = (long)beats + 1, expected = (requests + 99) / 100;
    printf("\nRESULT connections_used=%d for %ld requests (1 registration + %llu heartbeats); "
           "with the server's limit of 100 requests per connection at least %ld are needed: %s\n",
           nports, requests, (unsigned long long)beats, expected,
           nports <= expected + 1 ? "one connection reused until the server closes it"
                                  : "NOT REUSED");
}

static void latencies(int rounds) {
    printf("\n## 4./5. start -> visible UP and stop -> gone (warm server, %d rounds)\n", rounds);
    double accepted[64], visible[64], stop_call[64], gone[64];
    char body[8192], st[32];
    int n = 0;
    /* Warm the server and our code paths first (not counted). */
    for (int i = 0; i < 10; i++) {
        char id[64];
        registrar_client *c = new_client("30", id, sizeof id);
        start_up(c);
        registrar_client_stop(c, 5000);
        registrar_client_free(c);
    }
    /* What one GET costs on its own here (new connection each, as in the rounds below). */
    {
        char id[64];
        double g[21];
        registrar_client *c = new_client("30", id, sizeof id);
        start_up(c);
        for (int i = 0; i < 21; i++) {
            double g0 = tu_now_ms();
            tu_get_instance(url, APP, id, NULL, body, sizeof body);
            g[i] = tu_now_ms() - g0;
        }
        registrar_client_stop(c, 5000);
        registrar_client_free(c);
        printf("one GET apps/APP/ID alone: median %.2f ms\n", median(g, 21));
    }
    for (int r = 0; r < rounds && r < 64; r++) {
        char id[64];
        registrar_client *c = new_client("30", id, sizeof id);
        registrar_client_set_status(c, REGISTRAR_INSTANCE_UP);
        double t0 = tu_now_ms();
        registrar_client_start(c);
        if (registrar_client_wait_registered(c, 10000) != REGISTRAR_OK) {
            fprintf(stderr, "bench: %s\n", tu_last_error());
            exit(1);
        }
        double t1 = tu_now_ms();
        int up_gets = 0;
        for (;;) {
            up_gets++;
            int code = tu_get_instance(url, APP, id, NULL, body, sizeof body);
            if (code == 200 && strcmp(tu_json_status(body, st, sizeof st), "UP") == 0) break;
            if (tu_now_ms() - t0 > 10000) {
                fprintf(stderr, "bench: never visible UP\n");
                exit(1);
            }
        }
        double t2 = tu_now_ms();
        tu_sleep_ms(100);
        double s0 = tu_now_ms();
        registrar_client_stop(c, 5000);
        double s1 = tu_now_ms();
        int gets = 1;
        for (; tu_get_instance(url, APP, id, NULL, body, sizeof body) != 404; gets++) {
            if (tu_now_ms() - s0 > 10000) {
                fprintf(stderr, "bench: never gone\n");
                exit(1);
            }
        }
        double s2 = tu_now_ms();
        registrar_client_free(c);
        accepted[n] = t1 - t0;
        visible[n] = t2 - t0;
        stop_call[n] = s1 - s0;
        gone[n] = s2 - s0;
        printf("round %2d: start->accepted %.2f ms, start->GET shows UP %.2f ms (%d GET) | stop() "
               "%.2f ms, stop->GET 404 %.2f ms (%d GET)\n",
               r + 1, accepted[n], visible[n], up_gets, stop_call[n], gone[n], gets);
        n++;
    }
    double mv = median(visible, n), mg = median(gone, n);
    printf("RESULT start_to_up_ms=%.2f (median of %d; accepted %.2f; target < 50 ms: %s)\n", mv, n,
           median(accepted, n), verdict(mv < 50));
    printf("RESULT stop_to_gone_ms=%.2f (median of %d; stop() returns after %.2f; target < 50 ms: "
           "%s)\n",
           mg, n, median(stop_call, n), verdict(mg < 50));
}

/* ---- 8. many handles in one process ------------------------------------------------------- */

#define MANY_APP "BENCH_MANY"
#define MANY_CLIENTS 1000
#define MANY_CACHES 10
#define STOPPERS 50

/* GET apps/MANY_APP (HTTP/1.0, whole body) and count its instances with status UP: 0 when the
 * application is gone (404), -1 on a transport error. */
static int count_up(void) {
    static char *resp;
    const size_t cap = 16u << 20;
    if (!resp && !(resp = malloc(cap))) abort();
    int fd = raw_connect();
    if (fd < 0) return -1;
    const char *prefix = strchr(url + 7, '/');
    char req[512];
    int len = snprintf(req, sizeof req,
                       "GET %sapps/%s HTTP/1.0\r\nHost: 127.0.0.1:%d\r\nAccept: application/json\r\n\r\n",
                       prefix, MANY_APP, server_port);
    if (send(fd, req, (size_t)len, MSG_NOSIGNAL) != len) {
        close(fd);
        return -1;
    }
    size_t got = 0;
    for (;;) {
        ssize_t r = recv(fd, resp + got, cap - 1 - got, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0 || (got += (size_t)r) == cap - 1) break;
    }
    close(fd);
    resp[got] = 0;
    int status = -1;
    if (sscanf(resp, "HTTP/%*d.%*d %d", &status) != 1) return -1;
    if (status == 404) return 0;
    if (status != 200) return -1;
    int up = 0;
    for (const char *p = resp; (p = strstr(p, "\"status\":\"UP\"")); p++) up++;
    return up;
}

struct stopper {
    registrar_client **clients;
    int from, to, failed;
};

static void *stop_some(void *arg) {
    struct stopper *s = arg;
    for (int i = s->from; i < s->to; i++)
        if (registrar_client_stop(s->clients[i], 5000) != REGISTRAR_OK) s->failed++;
    return NULL;
}

static double lookup_ns(registrar_discovery *d, int with_url) {
    const long calls = 1000000;
    char buf[512];
    size_t len;
    unsigned long sink = 0;
    double t0 = 0;
    for (long i = -calls / 100; i < calls; i++) { /* 1 % warm-up */
        if (i == 0) t0 = tu_now_ms();
        if (with_url) {
            if (registrar_discovery_choose_url(d, REGISTRAR_LOOKUP_APP, MANY_APP,
                                               REGISTRAR_CHOICE_ROUND_ROBIN, 0, buf, sizeof buf,
                                               &len) != REGISTRAR_OK)
                abort();
            sink += len;
        } else {
            registrar_instance_list *list = NULL;
            if (registrar_discovery_choose(d, REGISTRAR_LOOKUP_APP, MANY_APP,
                                           REGISTRAR_CHOICE_ROUND_ROBIN, &list) != REGISTRAR_OK)
                abort();
            const registrar_instance *in = registrar_instance_list_get(list, 0);
            sink += (unsigned long)in->port + (unsigned long)in->host_name[0];
            registrar_instance_list_free(list);
        }
    }
    double ns = (tu_now_ms() - t0) * 1e6 / (double)calls;
    if (sink == 42) printf(" ");
    return ns;
}

static void many_handles(void) {
    printf("\n## 8. %d clients + %d discovery caches in one process (real server)\n", MANY_CLIENTS,
           MANY_CACHES);
    struct proc_status before = read_status();
    registrar_client **clients = calloc(MANY_CLIENTS, sizeof *clients);
    registrar_discovery *caches[MANY_CACHES];
    for (int i = 0; i < MANY_CLIENTS; i++) {
        registrar_config *cfg = NULL;
        char id[64];
        snprintf(id, sizeof id, "many-%ld-%d", (long)getpid(), i);
        registrar_config_new(&cfg);
        registrar_config_set(cfg, "url", url);
        registrar_config_set(cfg, "app_name", MANY_APP);
        registrar_config_set(cfg, "instance_id", id);
        registrar_config_set(cfg, "hostname", "127.0.0.1");
        registrar_config_set(cfg, "ip_address", "127.0.0.1");
        registrar_config_set(cfg, "port", "8080");
        if (registrar_client_new(cfg, &clients[i]) != REGISTRAR_OK) {
            fprintf(stderr, "bench: %s\n", tu_last_error());
            exit(1);
        }
        registrar_config_free(cfg);
        registrar_client_set_status(clients[i], REGISTRAR_INSTANCE_UP);
    }
    for (int i = 0; i < MANY_CACHES; i++) {
        registrar_config *cfg = NULL;
        registrar_config_new(&cfg);
        registrar_config_set(cfg, "url", url);
        registrar_config_set(cfg, "fetch_interval", "1");
        if (registrar_discovery_new(cfg, &caches[i]) != REGISTRAR_OK) abort();
        registrar_config_free(cfg);
    }
    struct proc_status created = read_status();

    double t0 = tu_now_ms();
    for (int i = 0; i < MANY_CLIENTS; i++) registrar_client_start(clients[i]);
    double started = tu_now_ms() - t0;
    for (int i = 0; i < MANY_CACHES; i++) registrar_discovery_start(caches[i]);
    /* The registry's own acknowledgement: every client's UP registration answered 204. */
    int acknowledged = 0;
    for (int i = 0; i < MANY_CLIENTS; i++)
        acknowledged += registrar_client_wait_registered(clients[i], 30000) == REGISTRAR_OK;
    double all_accepted = tu_now_ms() - t0;
    int up = 0, polls = 0;
    double all_up = -1;
    while (tu_now_ms() - t0 < 30000) {
        polls++;
        up = count_up();
        if (up == MANY_CLIENTS) {
            all_up = tu_now_ms() - t0;
            break;
        }
        tu_sleep_ms(20);
    }
    int accepted = 0;
    for (int i = 0; i < MANY_CLIENTS; i++)
        accepted += registrar_client_wait_registered(clients[i], 10000) == REGISTRAR_OK;
    for (int i = 0; i < MANY_CACHES; i++) {
        registrar_discovery_wait_ready(caches[i], 10000);
        registrar_discovery_refresh(caches[i], 10000);
    }
    tu_sleep_ms(2000); /* a few refreshes of every cache */
    struct proc_status running = read_status();
    printf("start() of %d clients took %.1f ms; GET apps/%s showed all %d UP %.0f ms after the "
           "first start (%d GETs; %d UP at the last); %d/%d report registered\n",
           MANY_CLIENTS, started, MANY_APP, MANY_CLIENTS, all_up, polls, up, accepted,
           MANY_CLIENTS);
    printf("process before: rss %ld KiB, %ld thread(s); after new: rss %+ld KiB, threads %+ld; "
           "running: rss %ld KiB (%+ld), threads %+ld\n",
           before.rss_kib, before.threads, created.rss_kib - before.rss_kib,
           created.threads - before.threads, running.rss_kib, running.rss_kib - before.rss_kib,
           running.threads - before.threads);
    printf("RESULT many_threads_added=%ld (target 1: %s)\n", running.threads - before.threads,
           verdict(running.threads - before.threads <= 1));
    printf("RESULT many_all_accepted_ms=%.0f (%d/%d UP registrations answered 204; target < 2000: "
           "%s)\n",
           all_accepted, acknowledged, MANY_CLIENTS, verdict(acknowledged == MANY_CLIENTS && all_accepted < 2000));
    printf("RESULT many_all_up_ms=%.0f (GET apps/%s lists all UP; target < 2000: %s)\n", all_up,
           MANY_APP, verdict(all_up >= 0 && all_up < 2000));
    printf("RESULT many_rss_kib=%ld whole process, %+ld added (target < 30720: %s)\n",
           running.rss_kib, running.rss_kib - before.rss_kib, verdict(running.rss_kib < 30720));

    double choose = lookup_ns(caches[0], 0), choose_url = lookup_ns(caches[0], 1);
    printf("RESULT discovery_c_lookup_ns: choose + read + list_free %.0f, choose_url %.0f "
           "(%d instances in the app; target < 300: %s)\n",
           choose, choose_url, MANY_CLIENTS, verdict(choose < 300 && choose_url < 300));

    pthread_t threads[STOPPERS];
    struct stopper stoppers[STOPPERS];
    double s0 = tu_now_ms();
    for (int t = 0; t < STOPPERS; t++) {
        stoppers[t] = (struct stopper){clients, t * MANY_CLIENTS / STOPPERS,
                                       (t + 1) * MANY_CLIENTS / STOPPERS, 0};
        pthread_create(&threads[t], NULL, stop_some, &stoppers[t]);
    }
    int stop_failed = 0;
    for (int t = 0; t < STOPPERS; t++) {
        pthread_join(threads[t], NULL);
        stop_failed += stoppers[t].failed;
    }
    double stops_returned = tu_now_ms() - s0;
    double all_gone = -1;
    polls = 0;
    while (tu_now_ms() - s0 < 30000) {
        polls++;
        if ((up = count_up()) == 0) {
            all_gone = tu_now_ms() - s0;
            break;
        }
        tu_sleep_ms(10);
    }
    printf("stop() of %d clients from %d threads: all returned after %.0f ms (%d failed); GET "
           "apps/%s empty %.0f ms after the first stop (%d GETs)\n",
           MANY_CLIENTS, STOPPERS, stops_returned, stop_failed, MANY_APP, all_gone, polls);
    printf("RESULT many_all_gone_ms=%.0f (target < 1000: %s)\n", all_gone,
           verdict(all_gone >= 0 && all_gone < 1000));
    for (int i = 0; i < MANY_CLIENTS; i++) registrar_client_free(clients[i]);
    for (int i = 0; i < MANY_CACHES; i++) registrar_discovery_free(caches[i]);
    free(clients);
    struct proc_status after = read_status();
    printf("after free: rss %ld KiB, threads %+ld (the thread ends with the last handle)\n",
           after.rss_kib, after.threads - before.threads);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s EUREKA_URL [rounds]\n", argv[0]);
        return 2;
    }
    url = argv[1];
    const char *colon = strrchr(url + 7, ':');
    server_port = colon ? atoi(colon + 1) : 80;
    if (argc > 3 && strcmp(argv[2], "--heartbeats") == 0) return count_heartbeats(atol(argv[3]));
    if (argc > 2 && strcmp(argv[2], "--cpu") == 0) {
        cpu_per_heartbeat(argc > 3 ? atoi(argv[3]) : 3);
        return 0;
    }
    if (argc > 2 && strcmp(argv[2], "--memory") == 0) {
        memory_and_threads();
        return 0;
    }
    if (argc > 2 && strcmp(argv[2], "--many") == 0) {
        many_handles();
        return 0;
    }
    int rounds = argc > 2 ? atoi(argv[2]) : 9;
    if (rounds < 1) rounds = 1;
    printf("registrar %s, registry %s\n", registrar_version(), url);
    memory_and_threads();
    latencies(rounds);
    connection_reuse();
    cpu_per_heartbeat(3);
    many_handles();
    return 0;
}
