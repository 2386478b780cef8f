/* Suites run by check_main.c, one per module. */
#ifndef CHECK_SUITES_H
#define CHECK_SUITES_H
#include <check.h>

Suite	*cfg_suite(void);
Suite	*hdr_suite(void);
Suite	*keydecode_suite(void);
Suite	*metrics_suite(void);
Suite	*policy_suite(void);
Suite	*pp2_suite(void);
Suite	*tls_suite(void);
Suite	*util_suite(void);

#endif
