/* check_main.c - runs every unit suite; exit status is the failure count. */
#include <stdlib.h>

#include <check.h>

#include "check_suites.h"

int
main(void)
{
	SRunner	*sr;
	int	 failed;

	sr = srunner_create(util_suite());
	srunner_add_suite(sr, cfg_suite());
	srunner_add_suite(sr, hdr_suite());
	srunner_add_suite(sr, metrics_suite());
	srunner_add_suite(sr, policy_suite());
	srunner_add_suite(sr, tls_suite());
	srunner_add_suite(sr, keydecode_suite());
	srunner_add_suite(sr, pp2_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
