/*
 * oracle: the lab's consistency oracle, run inside the oracle guest (agent-guest.sh builds it into the initramfs).
 *
 * It moves three pieces of state in lockstep, as fast as it can, each step carrying one counter value:
 *   1. a TPM 2.0 NV counter index (TPM2_NV_Increment), which swtpm persists in its state file at every increment;
 *   2. a UEFI variable (efivarfs), which OVMF keeps in the NVRAM file;
 *   3. the first 4 KiB block of a virtio disk, written with O_DIRECT|O_SYNC.
 * in that order, so at any instant TPM >= NVRAM >= disk >= TPM - 1. A VM restored from a backup taken at one instant
 * satisfies the same; one whose NVRAM or TPM state was copied later does not.
 *
 * At start it reads the three values left from before (a restored copy's) and prints them on one line, before it
 * changes anything:
 *   ORACLE boot tpm=T nvram=N disk=D            (0 for a value that is not there yet)
 * then prints "ORACLE run from=V" once the three hold the same value V and the loop starts, "ORACLE rate steps=S
 * per_s=R" about every two seconds, and "ORACLE stop step=V reason=..." when a write fails (OVMF's variable store
 * fills up after a few thousand writes; it is reclaimed at the next boot): then it stops stepping, so the three
 * stay consistent.
 *
 * Before the loop it also keeps a secret sealed to PCRs (sealed_secrets): the first boot seals it and prints
 * "ORACLE sealed secret=S"; every later boot (a restored copy) unseals and prints "ORACLE unseal pcr0+7=S|refused:RC
 * pcr0+1+7=S|refused:RC".
 *
 * Usage: oracle DISK [MAX_STEPS]   (DISK: the block device, e.g. /dev/vdb; MAX_STEPS: 0 or absent for no limit)
 * Raw TPM2 commands go to /dev/tpm0 (password sessions, empty auth): no tpm2-tools needed in the guest.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define NV_INDEX 0x01800B0Bu
#define TPM_ST_SESSIONS 0x8002
#define TPM_RS_PW 0x40000009u
#define TPM_RH_OWNER 0x40000001u
#define TPM_CC_NV_DEFINE_SPACE 0x0000012Au
#define TPM_CC_NV_INCREMENT 0x00000134u
#define TPM_CC_NV_READ 0x0000014Eu
#define TPM_RC_NV_DEFINED 0x0000014Cu
#define TPM_RC_NV_UNINITIALIZED 0x0000014Au
#define TPM_RC_HANDLE_1 0x0000018Bu
/* TPMA_NV_AUTHWRITE | TPM_NT_COUNTER << 4 | TPMA_NV_AUTHREAD | TPMA_NV_NO_DA; not ORDERLY: persisted at each step. */
#define NV_ATTRIBUTES 0x02040014u

#define VARIABLE "/sys/firmware/efi/efivars/VbOracle-5f3a9c2e-6b1d-4e8a-9c7f-0d2b4a6e8c11"
#define BLOCK 4096
static const char disk_magic[8] = {'V', 'B', 'O', 'R', 'A', 'C', 'L', 'E'};

static int tpm = -1;
static FILE *console;

static void say(const char *format, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    fputs("ORACLE ", console);
    vfprintf(console, format, args);
    fputc('\n', console);
    fflush(console);
    va_end(args);
}

static void put16(uint8_t **p, uint16_t v) { (*p)[0] = v >> 8; (*p)[1] = v; *p += 2; }
static void put32(uint8_t **p, uint32_t v) { (*p)[0] = v >> 24; (*p)[1] = v >> 16; (*p)[2] = v >> 8; (*p)[3] = v; *p += 4; }
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) << 32 | get32(p + 4); }

/* One command with a password session on the handles given; returns the response code, the response in out. */
static uint32_t tpm_command(uint32_t code, const uint32_t *handles, int handle_count,
                            const uint8_t *params, size_t params_length, uint8_t *out, size_t out_size)
{
    uint8_t command[256], *p = command + 10;
    for (int i = 0; i < handle_count; i++)
        put32(&p, handles[i]);
    put32(&p, 9); /* authorizationSize: one TPMS_AUTH_COMMAND of a password session with an empty password */
    put32(&p, TPM_RS_PW);
    put16(&p, 0);
    *p++ = 0;
    put16(&p, 0);
    memcpy(p, params, params_length);
    p += params_length;
    uint8_t *h = command;
    put16(&h, TPM_ST_SESSIONS);
    put32(&h, (uint32_t)(p - command));
    put32(&h, code);
    if (write(tpm, command, p - command) != p - command) {
        say("stop step=0 reason=tpm-write errno=%d", errno);
        exit(1);
    }
    ssize_t n = read(tpm, out, out_size);
    if (n < 10) {
        say("stop step=0 reason=tpm-read errno=%d", errno);
        exit(1);
    }
    return get32(out + 6);
}

/* A command with no authorization area (TPM_ST_NO_SESSIONS) or one session (password or policy, empty HMAC). */
static uint32_t tpm_run(uint32_t code, const uint32_t *handles, int handle_count, uint32_t session,
                        const uint8_t *params, size_t params_length, uint8_t *out, size_t out_size)
{
    uint8_t command[1024], *p = command + 10;
    for (int i = 0; i < handle_count; i++)
        put32(&p, handles[i]);
    if (session != 0) {
        put32(&p, 9);
        put32(&p, session);
        put16(&p, 0);
        *p++ = 0;
        put16(&p, 0);
    }
    if (params_length > sizeof command - (size_t)(p - command))
        return 0xFFFFFFFFu;
    memcpy(p, params, params_length);
    p += params_length;
    uint8_t *h = command;
    put16(&h, session != 0 ? TPM_ST_SESSIONS : 0x8001);
    put32(&h, (uint32_t)(p - command));
    put32(&h, code);
    if (write(tpm, command, p - command) != p - command)
        return 0xFFFFFFFEu;
    ssize_t n = read(tpm, out, out_size);
    return n < 10 ? 0xFFFFFFFDu : get32(out + 6);
}

static uint32_t nv_read(uint64_t *value)
{
    uint8_t params[4], *p = params, out[128];
    put16(&p, 8);
    put16(&p, 0);
    uint32_t handles[2] = {NV_INDEX, NV_INDEX};
    uint32_t rc = tpm_command(TPM_CC_NV_READ, handles, 2, params, sizeof params, out, sizeof out);
    /* tag, size, rc, parameterSize, TPM2B_MAX_NV_BUFFER { size = 8, value } */
    if (rc == 0)
        *value = get64(out + 16);
    return rc;
}

static uint32_t nv_increment(void)
{
    uint8_t out[64];
    uint32_t handles[2] = {NV_INDEX, NV_INDEX};
    return tpm_command(TPM_CC_NV_INCREMENT, handles, 2, NULL, 0, out, sizeof out);
}

static uint32_t nv_define(void)
{
    uint8_t params[32], *p = params, out[64];
    put16(&p, 0);  /* auth: empty */
    put16(&p, 14); /* TPM2B_NV_PUBLIC */
    put32(&p, NV_INDEX);
    put16(&p, 0x000B); /* SHA-256 */
    put32(&p, NV_ATTRIBUTES);
    put16(&p, 0); /* no policy */
    put16(&p, 8);
    uint32_t handles[1] = {TPM_RH_OWNER};
    return tpm_command(TPM_CC_NV_DEFINE_SPACE, handles, 1, params, p - params, out, sizeof out);
}

static int read_variable(uint64_t *value)
{
    uint8_t data[4 + 8];
    int fd = open(VARIABLE, O_RDONLY);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    ssize_t n = read(fd, data, sizeof data);
    close(fd);
    if (n != sizeof data)
        return -1;
    memcpy(value, data + 4, 8);
    return 1;
}

static int write_variable(uint64_t value)
{
    uint8_t data[4 + 8] = {0x07, 0, 0, 0}; /* NON_VOLATILE | BOOTSERVICE_ACCESS | RUNTIME_ACCESS */
    memcpy(data + 4, &value, 8);
    int fd = open(VARIABLE, O_WRONLY | O_CREAT, 0644);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, data, sizeof data);
    int saved = errno;
    close(fd);
    errno = saved;
    return n == sizeof data ? 0 : -1;
}

/* efivarfs may mark the file immutable; the flag is cleared through a read-only handle. */
static void make_variable_writable(void)
{
    int fd = open(VARIABLE, O_RDONLY);
    if (fd < 0)
        return;
    int flags;
    if (ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0 && (flags & FS_IMMUTABLE_FL)) {
        flags &= ~FS_IMMUTABLE_FL;
        ioctl(fd, FS_IOC_SETFLAGS, &flags);
    }
    close(fd);
}

static uint8_t *block;

static int read_disk(int disk, uint64_t *value)
{
    if (pread(disk, block, BLOCK, 0) != BLOCK)
        return -1;
    if (memcmp(block, disk_magic, 8) != 0) {
        *value = 0;
        return 0;
    }
    memcpy(value, block + 8, 8);
    return 1;
}

static int write_disk(int disk, uint64_t value)
{
    memcpy(block, disk_magic, 8);
    for (int offset = 8; offset < BLOCK; offset += 8)
        memcpy(block + offset, &value, 8);
    return pwrite(disk, block, BLOCK, 0) == BLOCK ? 0 : -1;
}

/* ---- A secret sealed to PCRs, as a disk-encryption tool does: kept on vdb's second block, unsealed at each boot. ---- */
#define TPM_CC_CREATE_PRIMARY 0x00000131u
#define TPM_CC_CREATE 0x00000153u
#define TPM_CC_LOAD 0x00000157u
#define TPM_CC_UNSEAL 0x0000015Eu
#define TPM_CC_FLUSH_CONTEXT 0x00000165u
#define TPM_CC_START_AUTH_SESSION 0x00000176u
#define TPM_CC_POLICY_PCR 0x0000017Fu
#define TPM_CC_POLICY_GET_DIGEST 0x00000189u
#define TPM_RH_NULL 0x40000007u
static const char seal_magic[8] = {'V', 'B', 'S', 'E', 'A', 'L', 'E', 'D'};

static void put_pcrs(uint8_t **p, uint8_t select0)
{
    put32(p, 1);      /* one bank */
    put16(p, 0x000B); /* SHA-256 */
    *(*p)++ = 3;      /* sizeofSelect */
    *(*p)++ = select0;
    *(*p)++ = 0;
    *(*p)++ = 0;
}

/* The owner hierarchy's ECC P-256 storage key: the same template gives the same key from the same (restored) seed. */
static uint32_t create_primary(uint32_t *handle)
{
    uint8_t params[128], *p = params, out[1024];
    put16(&p, 4); put16(&p, 0); put16(&p, 0); /* inSensitive: no auth, no data */
    uint8_t *size = p;
    put16(&p, 0);
    put16(&p, 0x0023); /* ECC */
    put16(&p, 0x000B);
    put32(&p, 0x00030072u); /* fixedTPM fixedParent sensitiveDataOrigin userWithAuth restricted decrypt */
    put16(&p, 0);
    put16(&p, 0x0006); put16(&p, 128); put16(&p, 0x0043); /* AES-128-CFB */
    put16(&p, 0x0010); put16(&p, 0x0003); put16(&p, 0x0010); /* no scheme, P-256, no KDF */
    put16(&p, 0); put16(&p, 0);
    uint8_t *end = p;
    p = size;
    put16(&p, (uint16_t)(end - size - 2));
    p = end;
    put16(&p, 0);   /* outsideInfo */
    put32(&p, 0);   /* creationPCR: none */
    uint32_t handles[1] = {TPM_RH_OWNER};
    uint32_t rc = tpm_run(TPM_CC_CREATE_PRIMARY, handles, 1, TPM_RS_PW, params, p - params, out, sizeof out);
    if (rc == 0)
        *handle = get32(out + 10);
    return rc;
}

static void flush(uint32_t handle)
{
    uint8_t params[4], *p = params, out[64];
    put32(&p, handle);
    tpm_run(TPM_CC_FLUSH_CONTEXT, NULL, 0, 0, params, 4, out, sizeof out);
}

/* A policy (0x01) or trial (0x03) session with PolicyPCR on the PCRs of select0 (bit n: PCR n) already run in it. */
static uint32_t pcr_session(uint8_t type, uint8_t select0, uint32_t *session)
{
    uint8_t params[64], *p = params, out[256];
    put16(&p, 32);
    memset(p, 0x5A, 32); /* nonceCaller */
    p += 32;
    put16(&p, 0);      /* no salt */
    *p++ = type;
    put16(&p, 0x0010); /* no parameter encryption */
    put16(&p, 0x000B);
    uint32_t handles[2] = {TPM_RH_NULL, TPM_RH_NULL};
    uint32_t rc = tpm_run(TPM_CC_START_AUTH_SESSION, handles, 2, 0, params, p - params, out, sizeof out);
    if (rc != 0)
        return rc;
    *session = get32(out + 10);
    p = params;
    put16(&p, 0); /* the PCRs as they are now */
    put_pcrs(&p, select0);
    uint32_t policy[1] = {*session};
    rc = tpm_run(TPM_CC_POLICY_PCR, policy, 1, 0, params, p - params, out, sizeof out);
    if (rc != 0)
        flush(*session);
    return rc;
}

/* Seals secret under the primary to a policy of the current values of the PCRs in select0; blob: TPM2B private, TPM2B public. */
static uint32_t seal_secret(uint32_t primary, uint8_t select0, const char *secret, uint8_t *blob, size_t *blob_length)
{
    uint32_t session, rc = pcr_session(0x03, select0, &session);
    if (rc != 0)
        return rc;
    uint8_t out[1024], digest[32];
    uint32_t handles[1] = {session};
    rc = tpm_run(TPM_CC_POLICY_GET_DIGEST, handles, 1, 0, NULL, 0, out, sizeof out);
    flush(session);
    if (rc != 0)
        return rc;
    memcpy(digest, out + 12, 32);
    uint8_t params[256], *p = params;
    size_t length = strlen(secret);
    put16(&p, (uint16_t)(4 + length)); put16(&p, 0); put16(&p, (uint16_t)length);
    memcpy(p, secret, length);
    p += length;
    put16(&p, 2 + 2 + 4 + 2 + 32 + 2 + 2);
    put16(&p, 0x0008); /* KEYEDHASH: a sealed data object */
    put16(&p, 0x000B);
    put32(&p, 0x00000012u); /* fixedTPM fixedParent; no userWithAuth: the policy only */
    put16(&p, 32);
    memcpy(p, digest, 32);
    p += 32;
    put16(&p, 0x0010);
    put16(&p, 0);
    put16(&p, 0);
    put32(&p, 0);
    uint32_t parent[1] = {primary};
    rc = tpm_run(TPM_CC_CREATE, parent, 1, TPM_RS_PW, params, p - params, out, sizeof out);
    if (rc != 0)
        return rc;
    const uint8_t *q = out + 14;
    size_t private_length = 2 + (q[0] << 8 | q[1]);
    size_t public_length = 2 + (q[private_length] << 8 | q[private_length + 1]);
    memcpy(blob, q, private_length + public_length);
    *blob_length = private_length + public_length;
    return 0;
}

static uint32_t unseal_secret(uint32_t primary, uint8_t select0, const uint8_t *blob, size_t blob_length, char *secret, size_t secret_size)
{
    uint8_t out[1024];
    uint32_t parent[1] = {primary};
    uint32_t rc = tpm_run(TPM_CC_LOAD, parent, 1, TPM_RS_PW, blob, blob_length, out, sizeof out);
    if (rc != 0)
        return rc;
    uint32_t object = get32(out + 10), session;
    rc = pcr_session(0x01, select0, &session);
    if (rc == 0) {
        uint32_t item[1] = {object};
        rc = tpm_run(TPM_CC_UNSEAL, item, 1, session, NULL, 0, out, sizeof out);
        if (rc == 0) {
            size_t length = out[14] << 8 | out[15];
            length = length < secret_size - 1 ? length : secret_size - 1;
            memcpy(secret, out + 16, length);
            secret[length] = 0;
        } else {
            flush(session);
        }
    }
    flush(object);
    return rc;
}

/* Two secrets, one to PCRs 0+7 (firmware, Secure Boot state) and one to 0+1+7 (also the platform configuration:
 * SMBIOS, with the VM's UUID, and the boot variables). The first boot seals; every later boot unseals and says so. */
static void sealed_secrets(int disk)
{
    static const uint8_t selects[2] = {0x81, 0x83};
    static const char *names[2] = {"pcr0+7", "pcr0+1+7"};
    uint32_t primary, rc = create_primary(&primary);
    if (rc != 0) {
        say("seal error=create-primary rc=0x%x", rc);
        return;
    }
    if (pread(disk, block, BLOCK, BLOCK) != BLOCK) {
        say("seal error=read errno=%d", errno);
        flush(primary);
        return;
    }
    if (memcmp(block, seal_magic, 8) == 0) {
        const uint8_t *p = block + 8;
        char line[256] = "", secret[64];
        for (int i = 0; i < 2; i++) {
            size_t length = p[0] << 8 | p[1];
            if (length > 1024) {
                say("seal error=blob-size");
                break;
            }
            rc = unseal_secret(primary, selects[i], p + 2, length, secret, sizeof secret);
            size_t used = strlen(line);
            if (rc == 0)
                snprintf(line + used, sizeof line - used, " %s=%s", names[i], secret);
            else
                snprintf(line + used, sizeof line - used, " %s=refused:0x%x", names[i], rc);
            p += 2 + length;
        }
        say("unseal%s", line);
    } else {
        char secret[40];
        uint8_t random_bytes[8];
        int urandom = open("/dev/urandom", O_RDONLY);
        if (urandom < 0 || read(urandom, random_bytes, 8) != 8) {
            say("seal error=random");
            flush(primary);
            return;
        }
        close(urandom);
        snprintf(secret, sizeof secret, "vb-%02x%02x%02x%02x%02x%02x%02x%02x", random_bytes[0], random_bytes[1], random_bytes[2],
                 random_bytes[3], random_bytes[4], random_bytes[5], random_bytes[6], random_bytes[7]);
        memset(block, 0, BLOCK);
        memcpy(block, seal_magic, 8);
        uint8_t *p = block + 8;
        for (int i = 0; i < 2; i++) {
            size_t length = 0;
            rc = seal_secret(primary, selects[i], secret, p + 2, &length);
            if (rc != 0) {
                say("seal error=%s rc=0x%x", names[i], rc);
                flush(primary);
                return;
            }
            p[0] = length >> 8;
            p[1] = length;
            p += 2 + length;
        }
        if (pwrite(disk, block, BLOCK, BLOCK) != BLOCK) {
            say("seal error=write errno=%d", errno);
        } else {
            say("sealed secret=%s", secret);
        }
    }
    flush(primary);
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: oracle DISK [MAX_STEPS]\n");
        return 2;
    }
    unsigned long long max_steps = argc > 2 ? strtoull(argv[2], NULL, 10) : 0;
    console = fopen("/dev/console", "w");
    if (console == NULL)
        console = stdout;
    tpm = open("/dev/tpm0", O_RDWR);
    if (tpm < 0) {
        say("stop step=0 reason=no-tpm errno=%d", errno);
        return 1;
    }
    int disk = open(argv[1], O_RDWR | O_DIRECT | O_SYNC);
    if (disk < 0 || posix_memalign((void **)&block, BLOCK, BLOCK) != 0) {
        say("stop step=0 reason=no-disk errno=%d", errno);
        return 1;
    }

    uint64_t tpm_value = 0, nvram_value = 0, disk_value = 0;
    uint32_t rc = nv_read(&tpm_value);
    if (rc != 0 && rc != TPM_RC_NV_UNINITIALIZED && (rc & 0xFFF) != TPM_RC_HANDLE_1) {
        say("stop step=0 reason=nv-read rc=0x%x", rc);
        return 1;
    }
    if (read_variable(&nvram_value) < 0 || read_disk(disk, &disk_value) < 0) {
        say("stop step=0 reason=boot-read errno=%d", errno);
        return 1;
    }
    say("boot tpm=%llu nvram=%llu disk=%llu", (unsigned long long)tpm_value, (unsigned long long)nvram_value,
        (unsigned long long)disk_value);

    sealed_secrets(disk);

    /* A first boot defines the counter (it reads only once incremented); then all three start from one value. */
    if (rc != 0) {
        rc = nv_define();
        if (rc != 0 && rc != TPM_RC_NV_DEFINED) {
            say("stop step=0 reason=nv-define rc=0x%x", rc);
            return 1;
        }
    }
    make_variable_writable();
    double started = now(), reported = started;
    unsigned long long steps = 0, reported_steps = 0;
    for (;;) {
        if ((rc = nv_increment()) != 0) {
            say("stop step=%llu reason=nv-increment rc=0x%x", (unsigned long long)tpm_value, rc);
            return 1;
        }
        if ((rc = nv_read(&tpm_value)) != 0) {
            say("stop step=%llu reason=nv-read rc=0x%x", (unsigned long long)tpm_value, rc);
            return 1;
        }
        int written = write_variable(tpm_value);
        if (written != 0 && errno == EPERM) {
            make_variable_writable(); /* a variable file efivarfs just created is immutable */
            written = write_variable(tpm_value);
        }
        if (written != 0) {
            say("stop step=%llu reason=variable errno=%d", (unsigned long long)tpm_value, errno);
            return 1;
        }
        if (write_disk(disk, tpm_value) != 0) {
            say("stop step=%llu reason=disk errno=%d", (unsigned long long)tpm_value, errno);
            return 1;
        }
        if (steps++ == 0)
            say("run from=%llu", (unsigned long long)tpm_value);
        double t = now();
        if (t - reported >= 2.0) {
            say("rate steps=%llu per_s=%.1f value=%llu", steps, (steps - reported_steps) / (t - reported),
                (unsigned long long)tpm_value);
            reported = t;
            reported_steps = steps;
        }
        if (max_steps != 0 && steps >= max_steps) {
            say("stop step=%llu reason=max-steps", (unsigned long long)tpm_value);
            return 0;
        }
    }
}
