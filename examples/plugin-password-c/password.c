/*
 * `password`: a ToolForge plugin written in C, to show the plugin ABI (version 1,
 * see tools/src/plugin.rs) from another language than Rust. It generates random
 * passwords from the operating system's random source.
 *
 * Build:  cc -O2 -shared -fPIC -o libtoolforge_plugin_password.so password.c
 * Use:    [tools] plugins = ["examples/plugin-password-c/libtoolforge_plugin_password.so"]
 *
 * The ABI in four functions: the version, the spec (JSON, with example requests
 * the router learns the tool from before any retraining), a call (JSON arguments
 * in, {"ok": ...} or {"error": ...} out) and a free function for every string
 * returned. The host checks the arguments against the schema before calling, so
 * the call sees a JSON object with at most `length` (an integer) and `symbols` (a
 * boolean); it still checks its own bounds. Nothing here can unwind into the host.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ABI_VERSION 1u
#define MIN_LENGTH 4
#define MAX_LENGTH 128
#define DEFAULT_LENGTH 16

static const char SPEC[] =
    "{\"name\":\"password\","
    "\"description\":\"Generates a random password: how long (default 16) and whether it has symbols (default yes).\","
    "\"parameters\":{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{"
    "\"length\":{\"type\":\"integer\",\"minimum\":4,\"maximum\":128,\"description\":\"Characters, from 4 to 128 (default 16).\"},"
    "\"symbols\":{\"type\":\"boolean\",\"description\":\"Include symbols such as !#%&* (default true).\"}}},"
    "\"examples\":["
    "{\"query\":\"generate a password\",\"arguments\":{}},"
    "{\"query\":\"make me a strong password\",\"arguments\":{}},"
    "{\"query\":\"i need a 20 character password\",\"arguments\":{\"length\":20}},"
    "{\"query\":\"create a 12 character password with symbols\",\"arguments\":{\"length\":12,\"symbols\":true}},"
    "{\"query\":\"give me a random password without special characters\",\"arguments\":{\"symbols\":false}},"
    "{\"query\":\"new wifi password please, 10 letters and digits only\",\"arguments\":{\"length\":10,\"symbols\":false}},"
    "{\"query\":\"suggest a secure password for my bank account\",\"arguments\":{}},"
    "{\"query\":\"random password 32 chars\",\"arguments\":{\"length\":32}}"
    "]}";

static char *copy_string(const char *text) {
    size_t n = strlen(text) + 1;
    char *out = malloc(n);
    if (out != NULL) {
        memcpy(out, text, n);
    }
    return out;
}

static char *error_reply(const char *message) {
    char buffer[256];
    snprintf(buffer, sizeof buffer, "{\"error\":\"%s\"}", message);
    return copy_string(buffer);
}

/* The value after `"key":` in a flat JSON object, or NULL. */
static const char *find_value(const char *json, const char *key) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\"", key);
    const char *at = strstr(json, pattern);
    if (at == NULL) {
        return NULL;
    }
    at += strlen(pattern);
    while (*at == ' ' || *at == '\t' || *at == '\n' || *at == '\r' || *at == ':') {
        at++;
    }
    return at;
}

uint32_t toolforge_plugin_abi_version(void) { return ABI_VERSION; }

char *toolforge_plugin_spec(void) { return copy_string(SPEC); }

char *toolforge_plugin_call(const char *args_json) {
    static const char LETTERS[] =
        "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    static const char SYMBOLS[] = "!#%&*+-=?@^_~";
    if (args_json == NULL) {
        return error_reply("no arguments were passed (null pointer)");
    }
    long length = DEFAULT_LENGTH;
    const char *value = find_value(args_json, "length");
    if (value != NULL) {
        char *end = NULL;
        length = strtol(value, &end, 10);
        if (end == value) {
            return error_reply("invalid arguments: length must be an integer");
        }
    }
    if (length < MIN_LENGTH || length > MAX_LENGTH) {
        return error_reply("invalid arguments: length must be between 4 and 128");
    }
    int symbols = 1;
    value = find_value(args_json, "symbols");
    if (value != NULL && strncmp(value, "false", 5) == 0) {
        symbols = 0;
    }
    char alphabet[sizeof LETTERS + sizeof SYMBOLS];
    strcpy(alphabet, LETTERS);
    if (symbols) {
        strcat(alphabet, SYMBOLS);
    }
    size_t size = strlen(alphabet);
    unsigned char noise[MAX_LENGTH * 2];
    FILE *source = fopen("/dev/urandom", "rb");
    if (source == NULL) {
        return error_reply("no random source (/dev/urandom) on this system");
    }
    size_t got = fread(noise, 1, sizeof noise, source);
    fclose(source);
    if (got != sizeof noise) {
        return error_reply("the random source returned too few bytes");
    }
    char password[MAX_LENGTH + 1];
    long written = 0;
    /* Rejection sampling: bytes beyond the last whole multiple of `size` are skipped. */
    size_t limit = 256 - 256 % size;
    for (size_t i = 0; i < sizeof noise && written < length; i++) {
        if (noise[i] < limit) {
            password[written++] = alphabet[noise[i] % size];
        }
    }
    if (written < length) {
        return error_reply("the random source returned too few usable bytes; try again");
    }
    password[written] = '\0';
    char reply[512];
    snprintf(reply, sizeof reply,
             "{\"ok\":{\"password\":\"%s\",\"length\":%ld,\"symbols\":%s,"
             "\"summary\":\"A %ld-character password%s: %s\"}}",
             password, length, symbols ? "true" : "false", length,
             symbols ? " with symbols" : " of letters and digits", password);
    return copy_string(reply);
}

void toolforge_plugin_free(char *ptr) { free(ptr); }
