/*
 * The live subscribers of bench/chat in C: the same job and the same protocol with
 * chat_bench.py as `chat_client.py live`, at a fraction of the CPU per frame.
 *
 *   chat_client_c live INDEX --url ws://127.0.0.1:PORT/PATH --room R --tokens FILE
 *                 --first I --count N --expected MESSAGES --out DIR
 *
 * Opens sockets first..first+N-1 (tokens from FILE, one per line, used in turn), subscribes
 * each to R (waits for its `subscribed` frame), prints one JSON line once all are ready, then
 * reads frames until a command arrives on stdin: `stop ACKED_FILE` (count, per socket, the
 * acknowledged sequence numbers it never received; save every latency to DIR/lat-INDEX.bin as
 * native int64 nanoseconds) or `close`. Prints one JSON result line and closes its sockets.
 *
 * Why: 1,000 subscribers x 100 messages/s is 100,000 frames/s. Python's clients spend about
 * 9.5 us of CPU per frame, about a core, on the 2 cores the hub also runs on: the measurement
 * then measures the clients as much as the hub. Here a frame costs 5-6 us, nearly all of it
 * the system calls to read it.
 *
 * Latency per delivery: CLOCK_MONOTONIC when the frame is parsed minus the send time the
 * sender wrote into the message's text ("SEQ NANOSECONDS"), as in chat_client.py.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define READ_SIZE (256 * 1024)

typedef struct {
    int fd;
    unsigned char *pending; /* bytes of a frame cut by the end of a read */
    size_t pending_len, pending_cap;
    unsigned char *got;     /* one byte per sequence number */
    size_t got_len;
    long long last_id;
    long duplicates, disordered, other, bad;
    int close_code;         /* -1 while open */
} Subscriber;

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static double now_s(void) { return now_ns() / 1e9; }

static void die(const char *message) {
    fprintf(stderr, "chat_client_c: %s\n", message);
    exit(2);
}

/* latencies */
static int64_t *latencies;
static size_t latency_count, latency_cap;

static void record_latency(int64_t value) {
    if (latency_count == latency_cap) {
        latency_cap = latency_cap ? latency_cap * 2 : 1 << 20;
        latencies = realloc(latencies, latency_cap * sizeof *latencies);
        if (!latencies) die("out of memory");
    }
    latencies[latency_count++] = value;
}

static void send_all(int fd, const void *data, size_t length) {
    const char *p = data;
    while (length > 0) {
        ssize_t n = send(fd, p, length, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            return; /* the socket is gone; reading will tell */
        }
        p += n;
        length -= (size_t)n;
    }
}

/* A masked client frame (mask 0: the payload goes as it is, which RFC 6455 allows). */
static void send_frame(int fd, int opcode, const char *payload, size_t length) {
    unsigned char header[8];
    size_t h = 0;
    header[h++] = (unsigned char)(0x80 | opcode);
    if (length < 126) {
        header[h++] = (unsigned char)(0x80 | length);
    } else {
        header[h++] = 0x80 | 126;
        header[h++] = (unsigned char)(length >> 8);
        header[h++] = (unsigned char)length;
    }
    memset(header + h, 0, 4);
    h += 4;
    send_all(fd, header, h);
    send_all(fd, payload, length);
}

static const char *find(const unsigned char *data, size_t length, const char *needle) {
    return memmem(data, length, needle, strlen(needle));
}

/* A `message` frame: {"type":"message","room":…,"message":{"id":N,…,"text":"SEQ NS",…}}. */
static void on_text(Subscriber *sub, const unsigned char *data, size_t length, long long now) {
    static const char prefix[] = "{\"type\":\"message\"";
    if (length < sizeof prefix - 1 || memcmp(data, prefix, sizeof prefix - 1) != 0) {
        sub->other++;
        return;
    }
    const char *end = (const char *)data + length;
    const char *id = find(data, length, "\"id\":");
    const char *text = id ? memmem(id, (size_t)(end - id), "\"text\":\"", 8) : NULL;
    if (!id || !text) {
        sub->bad++;
        return;
    }
    char *after;
    long long message_id = strtoll(id + 5, &after, 10);
    if (after == id + 5) { sub->bad++; return; }
    const char *p = text + 8;
    long long seq = strtoll(p, &after, 10);
    if (after == p || *after != ' ') { sub->bad++; return; }
    p = after + 1;
    long long sent = strtoll(p, &after, 10);
    if (after == p || *after != '"') { sub->bad++; return; }
    record_latency(now - sent);
    if (seq < 0) { sub->bad++; return; }
    if ((size_t)seq >= sub->got_len) {
        size_t size = (size_t)seq + 1;
        sub->got = realloc(sub->got, size);
        if (!sub->got) die("out of memory");
        memset(sub->got + sub->got_len, 0, size - sub->got_len);
        sub->got_len = size;
    }
    if (sub->got[seq]) sub->duplicates++;
    sub->got[seq] = 1;
    if (message_id <= sub->last_id) sub->disordered++;
    else sub->last_id = message_id;
}

/* The server frame at data[pos..length) (unmasked): its opcode, where its payload starts and
 * its size. Returns 0 while the frame is not all there. */
static int next_frame(const unsigned char *data, size_t length, size_t pos, int *opcode, size_t *start, uint64_t *size) {
    if (length - pos < 2) return 0;
    uint64_t n = data[pos + 1] & 0x7f;
    size_t header = n == 126 ? 4 : n == 127 ? 10 : 2;
    if (length - pos < header) return 0;
    if (n == 126) {
        n = ((uint64_t)data[pos + 2] << 8) | data[pos + 3];
    } else if (n == 127) {
        n = 0;
        for (int i = 0; i < 8; i++) n = (n << 8) | data[pos + 2 + i];
    }
    if (length - pos - header < n) return 0;
    *opcode = data[pos] & 0x0f;
    *start = pos + header;
    *size = n;
    return 1;
}

/* Keeps bytes that end in the middle of a frame, after what is kept already. */
static void keep_pending(Subscriber *sub, const unsigned char *data, size_t length) {
    if (length == 0) return;
    if (sub->pending_len + length > sub->pending_cap) {
        sub->pending_cap = (sub->pending_len + length) * 2;
        sub->pending = realloc(sub->pending, sub->pending_cap);
        if (!sub->pending) die("out of memory");
    }
    memcpy(sub->pending + sub->pending_len, data, length);
    sub->pending_len += length;
}

/* Takes whole frames from `data`; returns how many bytes were used. */
static size_t take_frames(Subscriber *sub, const unsigned char *data, size_t length) {
    size_t pos = 0, start;
    uint64_t size;
    int opcode;
    long long now = now_ns();
    while (next_frame(data, length, pos, &opcode, &start, &size)) {
        const unsigned char *payload = data + start;
        if (opcode == 1) {
            on_text(sub, payload, (size_t)size, now);
        } else if (opcode == 8) {
            sub->close_code = size >= 2 ? (payload[0] << 8) | payload[1] : 1005;
        } else if (opcode == 9) {
            send_frame(sub->fd, 10, (const char *)payload, (size_t)size);
        }
        pos = start + (size_t)size;
    }
    return pos;
}

static unsigned char *read_buffer;

/* Reads what is there; returns 0 when the socket ended. */
static int read_socket(Subscriber *sub) {
    for (;;) {
        ssize_t n = recv(sub->fd, read_buffer, READ_SIZE, 0);
        if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
        if (n == 0) return 0;
        size_t length = (size_t)n;
        if (sub->pending_len) {
            keep_pending(sub, read_buffer, length);
            size_t used = take_frames(sub, sub->pending, sub->pending_len);
            memmove(sub->pending, sub->pending + used, sub->pending_len - used);
            sub->pending_len -= used;
        } else {
            size_t used = take_frames(sub, read_buffer, length);
            keep_pending(sub, read_buffer + used, length - used);
        }
        if ((size_t)n < READ_SIZE) return 1;
    }
}

/* Connects, upgrades and subscribes; returns the socket or -1 with `error` set. */
static int open_subscribed(Subscriber *sub, const char *host, int port, const char *path,
                           const char *token, const char *room, char *error, size_t error_size) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) { snprintf(error, error_size, "socket: %s", strerror(errno)); return -1; }
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &address.sin_addr);
    struct timeval timeout = {.tv_sec = 120};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&address, sizeof address) < 0) {
        snprintf(error, error_size, "connect: %s", strerror(errno));
        close(fd);
        return -1;
    }
    char request[2048];
    int length = snprintf(request, sizeof request,
                          "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                          "Authorization: Bearer %s\r\n\r\n",
                          path, host, port, token);
    send_all(fd, request, (size_t)length);
    /* The answer's head, then frames until `subscribed`. */
    size_t have = 0;
    char *head_end = NULL;
    while (!head_end) {
        ssize_t n = recv(fd, read_buffer + have, READ_SIZE - have - 1, 0);
        if (n <= 0) { snprintf(error, error_size, "no answer to the upgrade"); close(fd); return -1; }
        have += (size_t)n;
        read_buffer[have] = 0;
        head_end = strstr((char *)read_buffer, "\r\n\r\n");
    }
    if (strncmp((char *)read_buffer, "HTTP/1.1 101", 12) != 0) {
        char *line_end = strstr((char *)read_buffer, "\r\n");
        if (line_end) *line_end = 0;
        snprintf(error, error_size, "upgrade answered %s", (char *)read_buffer);
        close(fd);
        return -1;
    }
    sub->fd = fd;
    char frame[512];
    int frame_length = snprintf(frame, sizeof frame, "{\"type\":\"subscribe\",\"room\":\"%s\"}", room);
    send_frame(fd, 1, frame, (size_t)frame_length);
    size_t rest = have - (size_t)(head_end + 4 - (char *)read_buffer);
    memmove(read_buffer, head_end + 4, rest);
    have = rest;
    for (;;) {
        /* Frames before `subscribed` (presence, say) are not counted. */
        size_t pos = 0, start;
        uint64_t size;
        int opcode;
        for (;;) {
            if (have - pos >= 2 && (read_buffer[pos + 1] & 0x7f) == 127) {
                snprintf(error, error_size, "a frame too large before subscribing");
                close(fd);
                return -1;
            }
            if (!next_frame(read_buffer, have, pos, &opcode, &start, &size)) break;
            const unsigned char *payload = read_buffer + start;
            if (find(payload, (size_t)size, "\"type\":\"subscribed\"")) {
                /* What came after it is the first of the live frames. */
                size_t after = start + (size_t)size;
                keep_pending(sub, read_buffer + after, have - after);
                fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
                return fd;
            }
            if (find(payload, (size_t)size, "\"type\":\"error\"")) {
                snprintf(error, error_size, "subscribe answered %.*s", (int)(size < 200 ? size : 200), payload);
                close(fd);
                return -1;
            }
            pos = start + (size_t)size;
        }
        memmove(read_buffer, read_buffer + pos, have - pos);
        have -= pos;
        ssize_t n = recv(fd, read_buffer + have, READ_SIZE - have, 0);
        if (n <= 0) { snprintf(error, error_size, "closed before subscribing"); close(fd); return -1; }
        have += (size_t)n;
    }
}

static void json_string(FILE *out, const char *text) {
    fputc('"', out);
    for (const char *p = text; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(out, "\\%c", *p);
        else if ((unsigned char)*p < 0x20) fprintf(out, "\\u%04x", *p);
        else fputc(*p, out);
    }
    fputc('"', out);
}

int main(int argc, char **argv) {
    const char *url = NULL, *room = NULL, *tokens_file = NULL, *out_dir = NULL;
    long first = 0, count = 0, expected = 0, index = 0;
    if (argc < 3 || strcmp(argv[1], "live") != 0) die("usage: chat_client_c live INDEX --url … (live mode only)");
    index = atol(argv[2]);
    for (int i = 3; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--url")) url = argv[i + 1];
        else if (!strcmp(argv[i], "--room")) room = argv[i + 1];
        else if (!strcmp(argv[i], "--tokens")) tokens_file = argv[i + 1];
        else if (!strcmp(argv[i], "--out")) out_dir = argv[i + 1];
        else if (!strcmp(argv[i], "--first")) first = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--count")) count = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--expected")) expected = atol(argv[i + 1]);
        else die("unknown option");
    }
    if (!url || !room || !tokens_file || !out_dir) die("--url, --room, --tokens and --out are required");
    char host[64];
    int port;
    char path[512];
    if (sscanf(url, "ws://%63[^:]:%d%511s", host, &port, path) != 3) die("--url must be ws://HOST:PORT/PATH");

    /* tokens */
    FILE *tf = fopen(tokens_file, "r");
    if (!tf) die("cannot read the tokens file");
    char **tokens = NULL;
    size_t token_count = 0;
    char line[4096];
    while (fgets(line, sizeof line, tf)) {
        line[strcspn(line, "\r\n \t")] = 0;
        if (!*line) continue;
        tokens = realloc(tokens, (token_count + 1) * sizeof *tokens);
        tokens[token_count++] = strdup(line);
    }
    fclose(tf);
    if (!token_count) die("no tokens");

    read_buffer = malloc(READ_SIZE + 1);
    Subscriber *subs = calloc((size_t)count, sizeof *subs);
    size_t ready = 0, failed = 0;
    char errors[3][300];
    double began = now_s();
    for (long i = 0; i < count; i++) {
        Subscriber *sub = &subs[ready];
        sub->close_code = -1;
        sub->got_len = (size_t)(expected > 0 ? expected : 0);
        sub->got = calloc(sub->got_len ? sub->got_len : 1, 1);
        char error[300];
        if (open_subscribed(sub, host, port, path, tokens[(size_t)(first + i) % token_count], room, error, sizeof error) < 0) {
            if (failed < 3) strcpy(errors[failed], error);
            failed++;
            free(sub->got);
            memset(sub, 0, sizeof *sub);
            continue;
        }
        ready++;
    }
    printf("{\"ready\": %zu, \"failed\": %zu, \"errors\": [", ready, failed);
    for (size_t e = 0; e < failed && e < 3; e++) {
        if (e) printf(", ");
        json_string(stdout, errors[e]);
    }
    printf("], \"seconds\": %.3f}\n", now_s() - began);
    fflush(stdout);

    int poll = epoll_create1(0);
    struct epoll_event event = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
    epoll_ctl(poll, EPOLL_CTL_ADD, 0, &event);
    for (size_t i = 0; i < ready; i++) {
        struct epoll_event e = {.events = EPOLLIN, .data.u64 = i};
        epoll_ctl(poll, EPOLL_CTL_ADD, subs[i].fd, &e);
        if (subs[i].pending_len) {
            size_t used = take_frames(&subs[i], subs[i].pending, subs[i].pending_len);
            memmove(subs[i].pending, subs[i].pending + used, subs[i].pending_len - used);
            subs[i].pending_len -= used;
        }
    }
    char command[4096] = "";
    struct epoll_event events[256];
    /* After each round of reading, a millisecond's pause: the frames of a message fanned out
     * to a thousand sockets then arrive while this process is not waiting in epoll_wait, so the
     * hub's writes need not wake it once per frame (a client on another machine costs the hub
     * no wake-ups at all). Deliveries are read up to a millisecond later for it. */
    const struct timespec pause = {.tv_nsec = 1000000};
    while (!*command) {
        int n = epoll_wait(poll, events, 256, -1);
        if (n > 0) {
            nanosleep(&pause, NULL);
            n = epoll_wait(poll, events, 256, 0);
        }
        for (int k = 0; k < n; k++) {
            if (events[k].data.u64 == UINT64_MAX) {
                if (!fgets(command, sizeof command, stdin)) strcpy(command, "close");
                continue;
            }
            Subscriber *sub = &subs[events[k].data.u64];
            if (!read_socket(sub)) {
                epoll_ctl(poll, EPOLL_CTL_DEL, sub->fd, NULL);
                if (sub->close_code < 0) sub->close_code = 1006;
            }
        }
    }

    /* results */
    printf("{\"sockets\": %zu, \"open_failed\": %zu, \"closed_by_hub\": {", ready, failed);
    /* close codes, counted */
    int codes[16];
    long code_counts[16];
    int distinct = 0;
    for (size_t i = 0; i < ready; i++) {
        if (subs[i].close_code < 0) continue;
        int found = -1;
        for (int c = 0; c < distinct; c++) if (codes[c] == subs[i].close_code) found = c;
        if (found < 0 && distinct < 16) { codes[distinct] = subs[i].close_code; code_counts[distinct++] = 0; found = distinct - 1; }
        if (found >= 0) code_counts[found]++;
    }
    for (int c = 0; c < distinct; c++) printf("%s\"%d\": %ld", c ? ", " : "", codes[c], code_counts[c]);
    printf("}");
    long other = 0, bad = 0, duplicates = 0, disordered = 0;
    for (size_t i = 0; i < ready; i++) {
        other += subs[i].other;
        bad += subs[i].bad;
        duplicates += subs[i].duplicates;
        disordered += subs[i].disordered;
    }
    char verb[16], acked_file[4000];
    if (sscanf(command, "%15s %3999s", verb, acked_file) == 2 && !strcmp(verb, "stop")) {
        FILE *af = fopen(acked_file, "r");
        if (!af) die("cannot read the acknowledged file");
        long *acked = NULL;
        size_t acked_count = 0;
        long seq;
        while (fscanf(af, "%ld", &seq) == 1) {
            acked = realloc(acked, (acked_count + 1) * sizeof *acked);
            acked[acked_count++] = seq;
        }
        fclose(af);
        long lost = 0, losing = 0, unexpected = 0;
        for (size_t i = 0; i < ready; i++) {
            long missing = 0, received = 0;
            for (size_t a = 0; a < acked_count; a++) {
                if (acked[a] < 0 || (size_t)acked[a] >= subs[i].got_len || !subs[i].got[acked[a]]) missing++;
            }
            for (size_t g = 0; g < subs[i].got_len; g++) received += subs[i].got[g];
            lost += missing;
            losing += missing > 0;
            unexpected += received - ((long)acked_count - missing);
        }
        char name[4200];
        snprintf(name, sizeof name, "%s/lat-%ld.bin", out_dir, index);
        FILE *lf = fopen(name, "wb");
        if (!lf) die("cannot write the latencies");
        fwrite(latencies, sizeof *latencies, latency_count, lf);
        fclose(lf);
        printf(", \"received\": %zu, \"lost\": %ld, \"subscribers_losing\": %ld, \"unexpected\": %ld"
               ", \"duplicates\": %ld, \"disordered\": %ld, \"other_frames\": %ld, \"unreadable\": %ld",
               latency_count, lost, losing, unexpected, duplicates, disordered, other, bad);
    } else {
        printf(", \"other_frames\": %ld", other);
    }
    double closing = now_s();
    for (size_t i = 0; i < ready; i++) {
        if (subs[i].close_code < 0) {
            unsigned char normal[2] = {0x03, 0xe8};
            send_frame(subs[i].fd, 8, (const char *)normal, 2);
        }
        close(subs[i].fd);
    }
    printf(", \"close_errors\": 0, \"close_seconds\": %.3f}\n", now_s() - closing);
    fflush(stdout);
    return 0;
}
