/* The open+close loop of benches/ab.sh and benches/profile.sh: opens and closes PATH (default
 * /etc/hostname) for SECONDS and prints ns per open+close; chrooted into JAIL first when given
 * (root: what a chrooted process pays, PATH then inside JAIL). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 1, t0 = now(), t;
	const char *path = argc > 2 ? argv[2] : "/etc/hostname";
	long n = 0;

	if (argc > 3 && (chroot(argv[3]) || chdir("/"))) {
		perror("chroot");
		return 1;
	}
	t0 = now();
	do {
		for (int i = 0; i < 1000; i++)
			close(open(path, O_RDONLY));
		n += 1000;
	} while ((t = now()) - t0 < secs);
	printf("%.1f\n", (t - t0) / n * 1e9);
	return 0;
}
