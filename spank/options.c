#include "spank/options.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/parse.h"

/* gvm gives each node its guest RAM in whole 2 MiB pages */
#define MEM_UNIT (2u << 20)
/* copy= may be given this many times (gvm takes more; a directory is better) */
#define OPTS_COPY_COUNT_MAX 64
#define KNOWN "image, mem, vcpus, numa, output, copy, overwrite, verbose"

struct gvm_opts gvm_opts;
char opts_error[GVM_ERR_MAX];
static const struct gvm_config *site;
static char site_err[GVM_ERR_MAX];

enum key { K_IMAGE, K_MEM, K_VCPUS, K_NUMA, K_OUTPUT, K_COPY, K_OVERWRITE, K_VERBOSE, K_NR };

static const struct {
	const char *name, *env;
	bool flag; /* may be given bare: "overwrite" means overwrite=yes */
} keys[K_NR] = {
	[K_IMAGE] = { "image", "GIANTVM_IMAGE", false },
	[K_MEM] = { "mem", "GIANTVM_MEM", false },
	[K_VCPUS] = { "vcpus", "GIANTVM_VCPUS", false },
	[K_NUMA] = { "numa", "GIANTVM_NUMA", false },
	[K_OUTPUT] = { "output", "GIANTVM_OUTPUT", false },
	[K_COPY] = { "copy", "GIANTVM_COPY", false },
	[K_OVERWRITE] = { "overwrite", "GIANTVM_OVERWRITE", true },
	[K_VERBOSE] = { "verbose", "GIANTVM_VERBOSE", true },
};

static void opts_init(struct gvm_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->overwrite = o->verbose = -1;
}

/*
 * A path for gvm: check_word's rules, and no comma, since a batch step hands
 * the settings on as one --giantvm=key=value,... (GIANTVM_* could carry one).
 */
static int check_path(const char *what, const char *val, char *err)
{
	char b[SHOWN_MAX];

	if (check_word(what, val, err))
		return -1;
	if (strchr(val, ','))
		return errf(err, "%s'%s' has a comma, which --giantvm cannot carry", what,
			    shown(val, b, sizeof(b)));
	return 0;
}

/* One key's value into o; what names the value's source in messages ("mem=", "GIANTVM_MEM="). */
static int set_key(struct gvm_opts *o, enum key k, const char *val, const char *what, char *err)
{
	char perr[PARSE_ERR_MAX], b[SHOWN_MAX];
	int v;

	switch (k) {
	case K_IMAGE:
		if (check_path(what, val, err))
			return -1;
		strcpy(o->image, val);
		return 0;
	case K_OUTPUT:
		if (check_path(what, val, err))
			return -1;
		strcpy(o->output, val);
		return 0;
	case K_COPY: {
		size_t used = 0, n = strlen(val) + 1;

		if (check_path(what, val, err))
			return -1;
		for (unsigned i = 0; i < o->ncopies; i++)
			used += strlen(o->copies + used) + 1;
		if (o->ncopies == OPTS_COPY_COUNT_MAX || used + n > sizeof(o->copies))
			return errf(err, "%s%s: too many files to copy (at most %d, or %d "
				    "characters in all): copy a directory instead", what,
				    shown(val, b, sizeof(b)), OPTS_COPY_COUNT_MAX,
				    OPTS_COPIES_MAX);
		memcpy(o->copies + used, val, n);
		o->ncopies++;
		return 0;
	}
	case K_MEM:
		if (parse_size(val, &o->mem, perr))
			return errf(err, "%s %s", what, shown(perr, b, sizeof(b)));
		if (!o->mem || o->mem % MEM_UNIT)
			return errf(err, "%s%s: the guest RAM of each node must be a non-zero "
				    "multiple of 2 MiB (e.g. 256M, 1G)", what, shown(val, b, sizeof(b)));
		return 0;
	case K_VCPUS:
		if (parse_uint(val, 1, 255, &o->vcpus, perr))
			return errf(err, "%s %s (vCPUs per node: 1 to 255)", what,
				    shown(perr, b, sizeof(b)));
		return 0;
	case K_NUMA:
		return parse_numa_word(what, val, &o->numa, err);
	case K_OVERWRITE:
	case K_VERBOSE:
		v = parse_bool_word(val);
		if (v < 0)
			return errf(err, "%s%s: say yes or no", what, shown(val, b, sizeof(b)));
		if (k == K_OVERWRITE)
			o->overwrite = v;
		else
			o->verbose = v;
		return 0;
	case K_NR:
		break;
	}
	return errf(err, "internal error: key %d", (int)k);
}

static int find_key(const char *name, size_t n)
{
	for (int k = 0; k < K_NR; k++)
		if (strlen(keys[k].name) == n && !strncmp(keys[k].name, name, n))
			return k;
	return -1;
}

int opts_parse(const char *arg, struct gvm_opts *o, char *err)
{
	bool seen[K_NR] = { false };
	char b[SHOWN_MAX];
	const char *p = arg;

	opts_init(o);
	o->enabled = true;
	/*
	 * A bare --giantvm reaches slurmstepd as NULL once and "" once, and
	 * the sruns of an sbatch --giantvm job as "(null)" (sbatch prints
	 * NULL into the job's environment); all mean "nothing more" (seen on
	 * 22.05).  No key is named "(null)", so no value is lost.
	 */
	if (!arg || !*arg || !strcmp(arg, "(null)"))
		return 0;
	if (strlen(arg) >= 8 * GVM_PATH_MAX)
		return errf(err, "the value is longer than %d characters", 8 * GVM_PATH_MAX - 1);
	for (;;) {
		size_t len = strcspn(p, ","), n;
		const char *eq = memchr(p, '=', len);
		char what[32], val[GVM_PATH_MAX];
		int k;

		if (!len)
			return errf(err, "an empty setting (two commas, or one at an end): "
				    "give key=value,key=value with keys %s", KNOWN);
		n = eq ? (size_t)(eq - p) : len;
		k = find_key(p, n);
		if (k < 0) {
			char name[64];

			snprintf(name, sizeof(name), "%.*s", (int)(n < 63 ? n : 63), p);
			return errf(err, "unknown setting '%s' (known: " KNOWN ")",
				    shown(name, b, sizeof(b)));
		}
		if (seen[k] && k != K_COPY)
			return errf(err, "%s is given twice", keys[k].name);
		seen[k] = true;
		snprintf(what, sizeof(what), "%s=", keys[k].name);
		if (!eq) {
			if (!keys[k].flag)
				return errf(err, "%s needs a value: %s=VALUE", keys[k].name,
					    keys[k].name);
			strcpy(val, "yes");
		} else {
			size_t vl = len - n - 1;

			if (vl >= sizeof(val))
				return errf(err, "%s is longer than %d characters", what,
					    GVM_PATH_MAX - 1);
			memcpy(val, eq + 1, vl);
			val[vl] = '\0';
		}
		if (set_key(o, (enum key)k, val, what, err))
			return -1;
		if (!p[len])
			return 0;
		p += len + 1;
	}
}

int opts_apply_env(struct gvm_opts *o, opts_getenv_fn get, void *arg, char *err)
{
	for (int k = 0; k < K_NR; k++) {
		char buf[GVM_PATH_MAX], what[64];
		bool set;
		int r;

		switch (k) {
		case K_IMAGE: set = o->image[0]; break;
		case K_MEM: set = o->mem; break;
		case K_VCPUS: set = o->vcpus; break;
		case K_NUMA: set = o->numa; break;
		case K_OUTPUT: set = o->output[0]; break;
		case K_COPY: set = o->ncopies; break;
		case K_OVERWRITE: set = o->overwrite >= 0; break;
		default: set = o->verbose >= 0; break;
		}
		if (set)
			continue;
		snprintf(what, sizeof(what), "%s=", keys[k].env);
		r = get(arg, keys[k].env, buf, sizeof(buf));
		if (r < 0)
			return errf(err, "%s is longer than %d characters", what, GVM_PATH_MAX - 1);
		if (!r)
			continue;
		if (k == K_COPY) {
			/* a list, as copy= is given several times in the option */
			char *save = NULL;

			for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
				if (set_key(o, K_COPY, t, what, err))
					return -1;
			continue;
		}
		if (set_key(o, (enum key)k, buf, what, err))
			return -1;
	}
	return 0;
}

int opts_check_site(const struct gvm_opts *o, const struct gvm_config *c, char *err)
{
	char a[32], b[32];

	if (c->max_mem && o->mem > c->max_mem)
		return errf(err, "mem=%s per node is above this site's limit, %s",
			    format_size(o->mem, a, sizeof(a)), format_size(c->max_mem, b, sizeof(b)));
	if (c->max_vcpus && o->vcpus > c->max_vcpus)
		return errf(err, "vcpus=%u per node is above this site's limit, %u", o->vcpus,
			    c->max_vcpus);
	return 0;
}

static int option_cb(int val, const char *arg, int remote)
{
	struct gvm_opts o;
	char err[GVM_ERR_MAX], b[SHOWN_MAX];

	(void)val;
	if (site_err[0]) {
		snprintf(err, sizeof(err), "--giantvm cannot be used: the plugin's line in "
			 "plugstack.conf is wrong (%s); tell your administrator", site_err);
	} else if (!opts_parse(arg, &o, err) && !(site && opts_check_site(&o, site, err))) {
		/*
		 * Slurm may call back more than once (the job's environment,
		 * then the command line; slurmstepd twice): the last word counts.
		 */
		gvm_opts = o;
		opts_error[0] = '\0';
		return 0;
	} else {
		char msg[GVM_ERR_MAX];

		snprintf(msg, sizeof(msg), "--giantvm=%s: %s", shown(arg, b, sizeof(b)), err);
		strcpy(err, msg);
	}
	if (remote) {
		gvm_opts.enabled = true;
		strcpy(opts_error, err);
		return 0;
	}
	slurm_error("giantvm: %s", err);
	return -1;
}

static struct spank_option giantvm_option = {
	.name = "giantvm",
	.arginfo = "[key=value,...]",
	.usage = "run the job's command inside one giantvm guest spanning the allocated "
		 "nodes. Keys: image=NAME|PATH, mem=SIZE and vcpus=N (per node), "
		 "copy=PATH (a file for the job, repeatable), output=DIR (where the files "
		 "the job leaves in $GVM_OUTPUT_DIR come back), overwrite, verbose; each "
		 "also as GIANTVM_IMAGE, GIANTVM_MEM... "
		 "(man spank-giantvm)",
	.has_arg = 2,
	.val = 0,
	.cb = option_cb,
};

int opts_register(spank_t sp, const struct gvm_config *c, const char *cfg_err)
{
	spank_err_t rc;

	site = c;
	snprintf(site_err, sizeof(site_err), "%s", cfg_err ? cfg_err : "");
	opts_init(&gvm_opts);
	opts_error[0] = '\0';
	rc = spank_option_register(sp, &giantvm_option);
	if (rc != ESPANK_SUCCESS) {
		slurm_error("giantvm: cannot register --giantvm: %s", spank_strerror(rc));
		return -1;
	}
	return 0;
}

static int from_environ(void *arg, const char *name, char *buf, size_t len)
{
	const char *v = getenv(name);

	(void)arg;
	if (!v)
		return 0;
	if (strlen(v) >= len)
		return -1;
	strcpy(buf, v);
	return 1;
}

int opts_submit_check(const struct gvm_config *c)
{
	struct gvm_opts o = gvm_opts;
	char err[GVM_ERR_MAX];

	if (!o.enabled)
		return 0;
	if (opts_apply_env(&o, from_environ, NULL, err) || opts_check_site(&o, c, err)) {
		slurm_error("giantvm: %s", err);
		return -1;
	}
	return 0;
}

int opts_format(const struct gvm_opts *o, char *buf, size_t len)
{
	size_t used = 0;
	int n;

#define ADD(...)                                                               \
	do {                                                                   \
		n = snprintf(buf + used, len - used, "%s", used ? "," : "");  \
		if (n < 0 || (size_t)n >= len - used)                          \
			return -1;                                             \
		used += n;                                                     \
		n = snprintf(buf + used, len - used, __VA_ARGS__);             \
		if (n < 0 || (size_t)n >= len - used)                          \
			return -1;                                             \
		used += n;                                                     \
	} while (0)

	buf[0] = '\0';
	if (o->image[0])
		ADD("image=%s", o->image);
	if (o->mem)
		ADD("mem=%" PRIu64, o->mem);
	if (o->vcpus)
		ADD("vcpus=%u", o->vcpus);
	if (o->numa == GVM_NUMA_HOST)
		ADD("numa=host");
	else if (o->numa)
		ADD("numa=%u", o->numa);
	if (o->output[0])
		ADD("output=%s", o->output);
	for (unsigned i = 0, at = 0; i < o->ncopies; i++) {
		ADD("copy=%s", o->copies + at);
		at += strlen(o->copies + at) + 1;
	}
	if (o->overwrite >= 0)
		ADD("overwrite=%s", o->overwrite ? "yes" : "no");
	if (o->verbose >= 0)
		ADD("verbose=%s", o->verbose ? "yes" : "no");
#undef ADD
	return 0;
}
