/* main.c: the smolvm command line. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "config.h"
#include "control.h"
#include "log.h"
#include "machine.h"
#include "plugin.h"
#include "signals.h"
#include "snapfile.h"
#include "snapshot.h"

#ifndef SMOLVM_VERSION
#define SMOLVM_VERSION "0.0.0"
#endif

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: smolvm [-v] COMMAND ...\n"
	        "\n"
	        "  smolvm run [--control SOCK] [--set SECTION.KEY=VALUE]... MACHINE.ini\n"
	        "        run a machine; exits with the guest's status (debug-exit), 0 when the\n"
	        "        guest powers off, 3 when it reboots (on_reboot = exit), 1 on a runtime\n"
	        "        failure, 2 on a config error, 128+N on signal N. --control: a control\n"
	        "        socket for `smolvm ctl`\n"
	        "  smolvm run [--control SOCK] [--set NAME.KEY=VALUE]... FILE.smolmachine\n"
	        "        restore a snapshot and run it; --set may change a device's input,\n"
	        "        output (UARTs) or path (disks: same size)\n"
	        "  smolvm check [--set SECTION.KEY=VALUE]... MACHINE.ini\n"
	        "        validate a machine without running it and print its layout\n"
	        "  smolvm check FILE.smolmachine\n"
	        "        verify every byte of a snapshot and print what it holds\n"
	        "  smolvm acpi [--set SECTION.KEY=VALUE]... MACHINE.ini DIR\n"
	        "        write the machine's ACPI tables to DIR (rsdp.dat, xsdt.dat, facp.dat,\n"
	        "        apic.dat, dsdt.dat), for iasl -d\n"
	        "  smolvm dtb [--set SECTION.KEY=VALUE]... MACHINE.ini OUT.dtb\n"
	        "        write the device tree an aarch64 machine's kernel gets, for dtc\n"
	        "  smolvm ctl SOCK status|pause|resume|snapshot FILE [--stop]|devices|methods|\n"
	        "                  call DEV.METHOD [ARG]...|stats\n"
	        "        talk to a machine run with --control SOCK: its state, pause and\n"
	        "        resume it, write a snapshot of it (with --stop the run then ends),\n"
	        "        list its devices and their methods, call one, read its counters;\n"
	        "        exits 0 when done, 1 when the machine refused, 2 on bad usage or\n"
	        "        when no machine listens on SOCK (`smolvm ctl -h`: every command)\n"
	        "  smolvm top SOCK [--interval MS] [--count N]\n"
	        "        the machine's counters (`ctl SOCK stats`), refreshed every second\n"
	        "  smolvm plugins\n"
	        "        list the plugins in the search path\n"
	        "  smolvm version\n"
	        "\n"
	        "  --set device.NAME.KEY=VALUE (or NAME.KEY=VALUE) overrides a device's key.\n"
	        "  -v: debug messages. Plugins are searched in [machine] plugin_path,\n"
	        "  $SMOLVM_PLUGIN_PATH, the build tree next to the executable, then %s.\n",
	        SMOLVM_PLUGIN_DIR);
}

enum mode { MODE_RUN, MODE_CHECK, MODE_ACPI, MODE_DTB };

/* What a restore's --set may change: host-side things of a device, never the machine. */
static bool restore_set_allowed(const char *set)
{
	const char *eq = strchr(set, '='), *dot = NULL;
	if (!eq)
		return false;
	for (const char *p = set; p < eq; p++)
		if (*p == '.')
			dot = p;
	if (!dot || strncmp(set, "machine.", 8) == 0 || strncmp(set, "boot.", 5) == 0 ||
	    strncmp(set, "snapshot.", 9) == 0)
		return false;
	size_t kl = (size_t)(eq - dot - 1);
	return (kl == 5 && strncmp(dot + 1, "input", 5) == 0) ||
	       (kl == 6 && strncmp(dot + 1, "output", 6) == 0) ||
	       (kl == 4 && strncmp(dot + 1, "path", 4) == 0);
}

/* Opens a snapshot for a restore and gives its machine description. A status on failure. */
static int open_snapshot(const char *file, struct snap_reader **sr, struct cfg **cfg)
{
	char err[1024];
	const void *text;
	size_t len;

	if (snapfile_open(sr, file, err, sizeof(err)) < 0) {
		fprintf(stderr, "smolvm: %s\n", err);
		return STATUS_CONFIG;
	}
	const struct snap_info *info = snapfile_info(*sr);
	if (!arch_by_tag(info->arch)) {
		fprintf(stderr,
		        "smolvm: %s: a snapshot of an %s machine; this smolvm runs %s machines\n",
		        file, info->arch == SMOL_ARCH_AARCH64 ? "aarch64" : "unknown-arch",
		        arch_names());
		goto err;
	}
	if (snapfile_section(*sr, SNAP_SEC_MACHINE, "", &text, &len) < 0) {
		fprintf(stderr, "smolvm: %s: the snapshot has no machine description\n", file);
		goto err;
	}
	if (cfg_deserialize(cfg, text, len, err, sizeof(err)) < 0) {
		fprintf(stderr, "smolvm: %s: %s\n", file, err);
		goto err;
	}
	return 0;
err:
	snapfile_close(*sr);
	*sr = NULL;
	return STATUS_CONFIG;
}

/* One configure-and-act pass over the machine file. *restart says the guest rebooted and
 * [machine] on_reboot = restart asks for another pass (which boots a restored machine's
 * kernel afresh). */
static int machine_once(const char *file, const char **sets, int n_sets, enum mode mode,
                        const char *dir, const char *control, unsigned boot, bool *restart)
{
	struct cfg *cfg;
	struct snap_reader *sr = NULL;
	struct machine m;
	int status;
	bool snapshot = mode == MODE_RUN && snapfile_is_snapshot(file) > 0;
	bool restoring = snapshot && boot == 1;

	*restart = false;
	if (snapshot) {
		if ((status = open_snapshot(file, &sr, &cfg)) != 0)
			return status;
		if (!restoring) {
			snapfile_close(sr);
			sr = NULL;
		}
	} else if (cfg_load(&cfg, file) < 0) {
		return STATUS_CONFIG;
	}
	for (int i = 0; i < n_sets; i++) {
		if (restoring && !restore_set_allowed(sets[i])) {
			fprintf(stderr,
			        "smolvm: --set %s: a restore may only change a device's input, "
			        "output or path\n",
			        sets[i]);
			snapfile_close(sr);
			cfg_free(cfg);
			return STATUS_CONFIG;
		}
		if (cfg_override(cfg, sets[i]) < 0) {
			snapfile_close(sr);
			cfg_free(cfg);
			return STATUS_CONFIG;
		}
	}
	int r = machine_configure(&m, cfg, mode != MODE_RUN, restoring);
	m.control_path = control;
	if (r < 0 && cfg->errors) {
		fprintf(stderr, "smolvm: %s: %d error%s; nothing was run\n", file, cfg->errors,
		        cfg->errors == 1 ? "" : "s");
		status = STATUS_CONFIG;
	} else if (r < 0) {
		fprintf(stderr, "smolvm: %s: could not set up the machine: %s\n", file,
		        strerror(-r));
		status = STATUS_ERROR;
	} else if (mode == MODE_CHECK) {
		struct arch_boot boot;
		r = machine_load_payload(&m, &boot);
		if (r < 0) {
			status = r == -EINVAL ? STATUS_CONFIG : STATUS_ERROR;
		} else {
			machine_print_layout(&m, &boot);
			printf("%s: ok\n", file);
			status = 0;
		}
	} else if (mode == MODE_ACPI) {
		r = machine_write_acpi(&m, dir);
		status = r == 0 ? 0 : r == -EINVAL ? STATUS_CONFIG : STATUS_ERROR;
	} else if (mode == MODE_DTB) {
		r = machine_write_dtb(&m, dir);
		status = r == 0 ? 0 : r == -EINVAL ? STATUS_CONFIG : STATUS_ERROR;
	} else {
		status = restoring ? snapshot_restore(&m, sr) : machine_boot(&m);
		if (status < 0)
			status = machine_run(&m);
		*restart = m.reset_requested && !m.signalled && m.on_reboot == ON_REBOOT_RESTART;
		if (m.signalled) /* it stopped the run, even if the guest's reboot came first */
			status = 128 + m.signalled;
	}
	machine_destroy(&m);
	snapfile_close(sr);
	cfg_free(cfg);
	return status;
}

static int cmd_machine(int argc, char **argv, enum mode mode)
{
	const char *file = NULL, *dir = NULL, *control = NULL;
	const char *sets[64];
	int n_sets = 0;

	for (int i = 0; i < argc; i++) {
		if (mode == MODE_RUN && strcmp(argv[i], "--control") == 0 && i + 1 < argc) {
			control = argv[++i];
		} else if (strcmp(argv[i], "--set") == 0 && i + 1 < argc) {
			if (n_sets == 64) {
				fprintf(stderr, "smolvm: too many --set options\n");
				return STATUS_CONFIG;
			}
			sets[n_sets++] = argv[++i];
		} else if (strncmp(argv[i], "--set=", 6) == 0 && n_sets < 64) {
			sets[n_sets++] = argv[i] + 6;
		} else if (argv[i][0] == '-' && argv[i][1]) {
			fprintf(stderr, "smolvm: unknown option '%s'\n", argv[i]);
			usage(stderr);
			return STATUS_CONFIG;
		} else if (!file) {
			file = argv[i];
		} else if ((mode == MODE_ACPI || mode == MODE_DTB) && !dir) {
			dir = argv[i];
		} else {
			fprintf(stderr, "smolvm: one machine file at a time ('%s' and '%s')\n",
			        file, argv[i]);
			return STATUS_CONFIG;
		}
	}
	if (!file || ((mode == MODE_ACPI || mode == MODE_DTB) && !dir)) {
		usage(stderr);
		return STATUS_CONFIG;
	}

	if (mode == MODE_CHECK && snapfile_is_snapshot(file) > 0) {
		char err[1024];
		if (n_sets) {
			fprintf(stderr, "smolvm: check %s: --set does not apply to a snapshot\n",
			        file);
			return STATUS_CONFIG;
		}
		if (snapfile_check(file, stdout, err, sizeof(err)) < 0) {
			fprintf(stderr, "smolvm: %s\n", err);
			return STATUS_CONFIG;
		}
		printf("%s: ok\n", file);
		return 0;
	}

	bool restart;
	int status;
	for (unsigned boots = 1;; boots++) {
		status = machine_once(file, sets, n_sets, mode, dir, control, boots, &restart);
		if (!restart)
			break;
		log_info("the guest rebooted: starting the machine again (boot %u)", boots + 1);
	}
	plugin_close_all();
	return status;
}

int main(int argc, char **argv)
{
	int i = 1;
	/* a closed stdout (a pipe whose reader left) must be an error a device sees, not death */
	/* a closed stdin/stdout/stderr would be reused by the first file we open (guest RAM's
	 * memfd, say) and then read or written as if it were the console */
	for (int fd = 0; fd <= 2; fd++)
		if (fcntl(fd, F_GETFD) < 0 &&
		    open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY) != fd)
			return STATUS_ERROR;
	signal(SIGPIPE, SIG_IGN);
	/* SIGINT/SIGTERM/SIGHUP work from here on: until a machine runs they leave at once
	 * (128 + N), so a blocked open() or a long check cannot hold them back (signals.c) */
	if (signals_init() < 0)
		return STATUS_ERROR;
	while (i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "-v") == 0) {
			log_level = SMOL_LOG_DEBUG;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("smolvm %s (plugin ABI %d.%d)\n", SMOLVM_VERSION, SMOL_ABI_MAJOR,
			       SMOL_ABI_MINOR);
			return 0;
		} else {
			fprintf(stderr, "smolvm: unknown option '%s'\n", argv[i]);
			usage(stderr);
			return STATUS_CONFIG;
		}
		i++;
	}
	if (i >= argc) {
		usage(stderr);
		return STATUS_CONFIG;
	}
	const char *cmd = argv[i++];
	if (strcmp(cmd, "run") == 0)
		return cmd_machine(argc - i, argv + i, MODE_RUN);
	if (strcmp(cmd, "check") == 0)
		return cmd_machine(argc - i, argv + i, MODE_CHECK);
	if (strcmp(cmd, "acpi") == 0)
		return cmd_machine(argc - i, argv + i, MODE_ACPI);
	if (strcmp(cmd, "dtb") == 0)
		return cmd_machine(argc - i, argv + i, MODE_DTB);
	if (strcmp(cmd, "ctl") == 0)
		return ctl_main(argc - i, argv + i);
	if (strcmp(cmd, "top") == 0)
		return top_main(argc - i, argv + i);
	if (strcmp(cmd, "plugins") == 0) {
		struct plugin_path pp;
		plugin_path_init(&pp, NULL);
		plugin_list(&pp);
		plugin_path_free(&pp);
		return 0;
	}
	if (strcmp(cmd, "version") == 0) {
		printf("smolvm %s (plugin ABI %d.%d)\n", SMOLVM_VERSION, SMOL_ABI_MAJOR,
		       SMOL_ABI_MINOR);
		return 0;
	}
	if (strcmp(cmd, "help") == 0) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "smolvm: unknown command '%s'\n", cmd);
	usage(stderr);
	return STATUS_CONFIG;
}
