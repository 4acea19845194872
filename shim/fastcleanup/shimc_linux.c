//go:build linux && cgo

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "shimc.h"

int mxc_shim_argv(int argc, char **argv, const char *verb, const char **id, const char **address)
{
	static const char *const value_flags[] = {"-namespace", "-address", "-publish-binary", "-id", "-bundle", NULL};
	*id = *address = NULL;
	if (argc < 2 || strcmp(argv[argc - 1], verb))
		return 0;
	for (int i = 1; i < argc - 1; i++) {
		if (!strcmp(argv[i], "-debug"))
			continue;
		int known = 0;
		for (const char *const *f = value_flags; *f; f++)
			if (!strcmp(argv[i], *f))
				known = 1;
		if (!known || i + 1 >= argc - 1)
			return 0;
		if (!strcmp(argv[i], "-id"))
			*id = argv[i + 1];
		else if (!strcmp(argv[i], "-address"))
			*address = argv[i + 1];
		i++;
	}
	return 1;
}

int mxc_shim_write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}
