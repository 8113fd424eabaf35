/*
 * with-listener: run a command with listening TCP sockets it inherits, on
 * ports the kernel picked (no race for a free port).
 *
 *   with-listener [--count N] [--port-file FILE] -- COMMAND [ARG]...
 *
 * Binds N (default 1) sockets on 127.0.0.1, port 0, writes their ports to
 * FILE one per line (if given, once all are bound), and runs COMMAND with
 * "@FDi@" and "@PORTi@" in its arguments replaced by socket i's descriptor
 * and port (i from 0), "@FD@" and "@PORT@" meaning socket 0's: for `gvm node
 * --listen-fd @FD@ --peers 127.0.0.1:@PORT@,...` in tests.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/mesh.h"

#define MAX_SOCKETS 16

/* arg with every key replaced by val; malloc'ed. */
static char *subst(const char *arg, const char *key, const char *val)
{
	size_t kl = strlen(key), vl = strlen(val), n = 0;
	const char *p;
	char *out, *o;

	for (p = arg; (p = strstr(p, key)); p += kl)
		n++;
	out = malloc(strlen(arg) + n * vl + 1);
	if (!out)
		return NULL;
	for (o = out, p = arg; *p;) {
		if (!strncmp(p, key, kl)) {
			memcpy(o, val, vl);
			o += vl;
			p += kl;
		} else {
			*o++ = *p++;
		}
	}
	*o = '\0';
	return out;
}

static int replace(char **arg, const char *key, int val)
{
	char num[16], *r;

	snprintf(num, sizeof(num), "%d", val);
	r = subst(*arg, key, num);
	if (!r)
		return -1;
	*arg = r;
	return 0;
}

int main(int argc, char **argv)
{
	struct hostport hp = { .host = "127.0.0.1", .port = 0 };
	const char *port_file = NULL;
	char err[MESH_ERR_MAX];
	int i = 1, count = 1, fd[MAX_SOCKETS], port[MAX_SOCKETS];

	for (; i + 1 < argc && strcmp(argv[i], "--"); i += 2) {
		if (!strcmp(argv[i], "--port-file"))
			port_file = argv[i + 1];
		else if (!strcmp(argv[i], "--count"))
			count = atoi(argv[i + 1]);
		else
			break;
	}
	if (i >= argc || strcmp(argv[i], "--") || i + 1 >= argc || count < 1 ||
	    count > MAX_SOCKETS) {
		fprintf(stderr, "usage: with-listener [--count N] [--port-file FILE] -- COMMAND "
				"[ARG]...\n");
		return 2;
	}
	i++;
	for (int k = 0; k < count; k++) {
		fd[k] = mesh_listen(&hp, err);
		if (fd[k] < 0) {
			fprintf(stderr, "with-listener: %s\n", err);
			return 1;
		}
		fcntl(fd[k], F_SETFD, 0); /* inherited by COMMAND */
		port[k] = mesh_local_port(fd[k]);
	}
	if (port_file) {
		char tmp[4096];
		FILE *f;
		int bad = 0;

		snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
		f = fopen(tmp, "w");
		for (int k = 0; f && k < count; k++)
			bad |= fprintf(f, "%d\n", port[k]) < 0;
		if (!f || bad || fclose(f) || rename(tmp, port_file)) {
			fprintf(stderr, "with-listener: cannot write %s: %s\n", port_file,
				strerror(errno));
			return 1;
		}
	}
	for (int a = i; a < argc; a++) {
		for (int k = count - 1; k >= 0; k--) {
			char key[16];

			snprintf(key, sizeof(key), "@FD%d@", k);
			if (replace(&argv[a], key, fd[k]))
				goto oom;
			snprintf(key, sizeof(key), "@PORT%d@", k);
			if (replace(&argv[a], key, port[k]))
				goto oom;
		}
		if (replace(&argv[a], "@FD@", fd[0]) || replace(&argv[a], "@PORT@", port[0]))
			goto oom;
	}
	execvp(argv[i], argv + i);
	fprintf(stderr, "with-listener: cannot run %s: %s\n", argv[i], strerror(errno));
	return 127;
oom:
	fprintf(stderr, "with-listener: out of memory\n");
	return 1;
}
