# mtlsproxy - build, test, demo.
PKGS	 = openssl libevent libevent_openssl libevent_pthreads yaml-0.1
# systemd notify, watchdog and socket activation when libsystemd is there
# (make SYSTEMD= builds without).
SYSTEMD	?= $(shell pkg-config --exists libsystemd 2>/dev/null && echo 1)
SYSTEMD	:= $(SYSTEMD)
PKGS	+= $(if $(SYSTEMD),libsystemd)
CC	?= cc
CFLAGS	?= -O2 -g
CFLAGS	+= -std=c11 -D_GNU_SOURCE -MMD -MP -Wall -Wextra -Wshadow \
	   -Wpointer-arith -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes \
	   -Wno-format-nonliteral -pthread
SAN	 = $(if $(SANITIZE),-fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all)
CFLAGS	+= $(if $(WERROR),-Werror) $(SAN)
CFLAGS	+= $(if $(SYSTEMD),-DHAVE_LIBSYSTEMD)
LDFLAGS	+= $(SAN) -pthread
PKGCFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKGLIBS	 = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CHECKLIBS = $(shell pkg-config --libs check 2>/dev/null)
PREFIX	?= /usr/local
UNITDIR	?= $(PREFIX)/lib/systemd/system
B	?= build

# Modules free of libevent, linked alone into the unit tests.
PURE	 = util cfg policy log tls keydecode proxy_v2 hdr metrics
SRCS	 = $(PURE) runtime listener worker session tlsout proxy_tcp proxy_http watch \
	   upstream admin sd priv explain main
# llhttp is compiled in from Debian's node-llhttp sources, never copied.
LLHTTP_SRC ?= /usr/share/llhttp
LLHTTP_INC ?= /usr/share/include/llhttp
LLHTTP	 = api http llhttp
OBJS	 = $(SRCS:%=$(B)/%.o) $(LLHTTP:%=$(B)/llhttp-%.o)
UNIT	 = $(wildcard tests/unit/check_*.c)

.PHONY: all deps test check integration demo certs install clean
all: $(B)/mtlsproxy

$(B)/%.o: src/%.c | $(B)
	$(CC) $(CFLAGS) $(PKGCFLAGS) -I$(LLHTTP_INC) -c -o $@ $<
$(B)/llhttp-%.o: $(LLHTTP_SRC)/%.c | $(B)
	$(CC) -O2 -g $(SAN) -I$(LLHTTP_INC) -c -o $@ $<
$(B)/proxy_http.o: | $(LLHTTP_INC)/llhttp.h
$(LLHTTP_INC)/llhttp.h:
	@echo "llhttp not found ($@): install Debian's node-llhttp (make deps does)" >&2; exit 1
$(LLHTTP_SRC)/%.c:
	@echo "llhttp not found ($@): install Debian's node-llhttp (make deps does)" >&2; exit 1
$(B)/mtlsproxy: $(OBJS)
	$(CC) $(LDFLAGS) -o $@ $(OBJS) $(PKGLIBS)
$(B)/unit/%.o: tests/unit/%.c | $(B)
	@mkdir -p $(B)/unit
	$(CC) $(CFLAGS) $(PKGCFLAGS) -Isrc -c -o $@ $<
$(B)/check_all: $(UNIT:tests/unit/%.c=$(B)/unit/%.o) $(PURE:%=$(B)/%.o)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKGLIBS) $(CHECKLIBS)
$(B):
	@mkdir -p $(B)

deps:
	@scripts/deps.sh
test: $(B)/check_all
	cd tests/unit && ../../$(B)/check_all
integration: $(B)/mtlsproxy
	tests/integration/run.sh $(B)/mtlsproxy
check: deps
	@$(MAKE) --no-print-directory all $(B)/check_all
	@$(MAKE) --no-print-directory test integration
certs:
	certs-example/make-demo-pki.sh certs-example/out
demo: deps
	@$(MAKE) --no-print-directory all
	@scripts/demo.sh $(B)/mtlsproxy
.PHONY: bench
bench: deps
	@$(MAKE) --no-print-directory all
	bench/run.sh $(B)/mtlsproxy
install: $(B)/mtlsproxy
	install -D -m 0755 $(B)/mtlsproxy $(DESTDIR)$(PREFIX)/bin/mtlsproxy
	install -D -m 0644 conf/mtlsproxy.yaml $(DESTDIR)/etc/mtlsproxy/mtlsproxy.yaml.example
	@mkdir -p $(DESTDIR)$(UNITDIR)
	sed 's|/usr/local/bin/mtlsproxy|$(PREFIX)/bin/mtlsproxy|g' \
	    systemd/mtlsproxy.service >$(DESTDIR)$(UNITDIR)/mtlsproxy.service
	install -m 0644 systemd/mtlsproxy.socket $(DESTDIR)$(UNITDIR)/
	install -D -m 0644 systemd/mtlsproxy.sysusers \
	    $(DESTDIR)$(PREFIX)/lib/sysusers.d/mtlsproxy.conf
clean:
	rm -rf $(B)

-include $(SRCS:%=$(B)/%.d) $(wildcard $(B)/unit/*.d)
