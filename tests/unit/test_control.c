/* test_control.c: unit tests for proto/control.c, the JSON control messages
 * of SPEC 4.2: what clients send (ctl_parse) and what the server builds
 * (each builder's output parsed back and checked field by field). */
#include "proto/control.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* Parses a NUL-terminated text (without the NUL) into req. */
static ctl_type parse(const char *text, ctl_request *req)
{
	return ctl_parse(text, strlen(text), req);
}

/* The text must be rejected as CTL_BAD with an error message. */
static void assert_bad(const char *text, const char *error)
{
	ctl_request req;
	ck_assert_msg(parse(text, &req) == CTL_BAD, "accepted: %s", text);
	ck_assert_int_eq(req.type, CTL_BAD);
	ck_assert_ptr_nonnull(req.error);
	if (error)
		ck_assert_str_eq(req.error, error);
	ck_assert_ptr_null(req.id);
	ctl_request_clear(&req);
}

/* ---- parsing ------------------------------------------------------------ */

START_TEST(test_ping)
{
	ctl_request req;
	ck_assert_int_eq(parse("{\"type\":\"ping\",\"id\":42}", &req), CTL_PING);
	ck_assert_int_eq(req.type, CTL_PING);
	ck_assert(json_is_integer(req.id));
	ck_assert_int_eq(json_integer_value(req.id), 42);
	ck_assert_ptr_null(req.error);
	ctl_request_clear(&req);
	ck_assert_ptr_null(req.id);
	ctl_request_clear(&req);                 /* twice is harmless */

	ck_assert_int_eq(parse("{\"id\":\"abc\",\"type\":\"ping\"}", &req), CTL_PING);
	ck_assert(json_is_string(req.id));
	ck_assert_str_eq(json_string_value(req.id), "abc");
	ctl_request_clear(&req);

	ck_assert_int_eq(parse("{\"type\":\"ping\",\"id\":{\"a\":[1,2,{\"b\":null}]}}", &req),
	                 CTL_PING);
	ck_assert(json_is_object(req.id));
	ck_assert_int_eq(json_integer_value(json_array_get(json_object_get(req.id, "a"), 1)), 2);
	/* the id outlives the parsed document: a pong can be built from it */
	char *pong = ctl_pong(req.id, 5);
	ck_assert_ptr_nonnull(pong);
	ck_assert_ptr_nonnull(strstr(pong, "\"id\":{\"a\":[1,2,{\"b\":null}]}"));
	free(pong);
	ctl_request_clear(&req);

	ck_assert_int_eq(parse("{\"type\":\"ping\"}", &req), CTL_PING);
	ck_assert_ptr_null(req.id);
	ctl_request_clear(&req);

	ck_assert_int_eq(parse("{\"type\":\"ping\",\"id\":null}", &req), CTL_PING);
	ck_assert(req.id == NULL || json_is_null(req.id));
	ctl_request_clear(&req);

	ck_assert_int_eq(parse(" \n{ \"type\" : \"ping\" , \"id\" : 1.5 }\n ", &req), CTL_PING);
	ck_assert(json_is_real(req.id));
	ctl_request_clear(&req);

	/* unknown extra fields are ignored */
	ck_assert_int_eq(parse("{\"type\":\"ping\",\"id\":1,\"x\":[true]}", &req), CTL_PING);
	ctl_request_clear(&req);
}
END_TEST

START_TEST(test_join)
{
	ctl_request req;
	ck_assert_int_eq(parse("{\"type\":\"join\",\"room\":\"R2\"}", &req), CTL_JOIN);
	ck_assert_str_eq(req.room, "R2");
	ck_assert_ptr_null(req.id);
	ctl_request_clear(&req);
	/* UTF-8 and escapes */
	ck_assert_int_eq(parse("{\"type\":\"join\",\"room\":\"caf\\u00e9 \\\"x\\\"/\\/\"}", &req),
	                 CTL_JOIN);
	ck_assert_str_eq(req.room, "caf\xc3\xa9 \"x\"//");
	ctl_request_clear(&req);
	/* exactly 128 bytes, and 128 bytes made of 2-byte characters */
	char text[512], room[200];
	memset(room, 'r', 128);
	room[128] = '\0';
	snprintf(text, sizeof text, "{\"type\":\"join\",\"room\":\"%s\"}", room);
	ck_assert_int_eq(parse(text, &req), CTL_JOIN);
	ck_assert_str_eq(req.room, room);
	ctl_request_clear(&req);
	room[0] = '\0';
	for (int i = 0; i < 64; i++)
		strcat(room, "\xc3\xa9");
	snprintf(text, sizeof text, "{\"type\":\"join\",\"room\":\"%s\"}", room);
	ck_assert_int_eq(parse(text, &req), CTL_JOIN);
	ck_assert_str_eq(req.room, room);
	ctl_request_clear(&req);
	/* a previous, longer room does not leak into the next parse */
	ck_assert_int_eq(parse("{\"type\":\"join\",\"room\":\"z\"}", &req), CTL_JOIN);
	ck_assert_str_eq(req.room, "z");
	ctl_request_clear(&req);
}
END_TEST

START_TEST(test_join_bad)
{
	assert_bad("{\"type\":\"join\"}", "join needs a \"room\" string");
	assert_bad("{\"type\":\"join\",\"room\":null}", "join needs a \"room\" string");
	assert_bad("{\"type\":\"join\",\"room\":5}", "join needs a \"room\" string");
	assert_bad("{\"type\":\"join\",\"room\":[\"a\"]}", "join needs a \"room\" string");
	assert_bad("{\"type\":\"join\",\"room\":{}}", "join needs a \"room\" string");
	assert_bad("{\"type\":\"join\",\"room\":true}", "join needs a \"room\" string");
	assert_bad("{\"type\":\"join\",\"room\":\"\"}", "room must be 1 to 128 bytes");
	char text[512], room[200];
	memset(room, 'r', 129);
	room[129] = '\0';
	snprintf(text, sizeof text, "{\"type\":\"join\",\"room\":\"%s\"}", room);
	assert_bad(text, "room must be 1 to 128 bytes");
	/* 127 ASCII + one 2-byte character = 129 bytes */
	memset(room, 'r', 127);
	strcpy(room + 127, "\xc3\xa9");
	snprintf(text, sizeof text, "{\"type\":\"join\",\"room\":\"%s\"}", room);
	assert_bad(text, "room must be 1 to 128 bytes");
	static const char *const ctrl[] = {
		"{\"type\":\"join\",\"room\":\"a\\nb\"}",
		"{\"type\":\"join\",\"room\":\"\\t\"}",
		"{\"type\":\"join\",\"room\":\"ab\\u0001\"}",
		"{\"type\":\"join\",\"room\":\"\\u001f\"}",
		"{\"type\":\"join\",\"room\":\"x\\u007f\"}",
		"{\"type\":\"join\",\"room\":\"\\r\"}",
	};
	for (size_t i = 0; i < sizeof ctrl / sizeof *ctrl; i++)
		assert_bad(ctrl[i], "room must not contain control characters");
	/* NUL inside the string: jansson refuses it, either way not a join */
	assert_bad("{\"type\":\"join\",\"room\":\"a\\u0000b\"}", NULL);
	/* a space and printable punctuation are fine */
	ctl_request req;
	ck_assert_int_eq(parse("{\"type\":\"join\",\"room\":\" ~!\"}", &req), CTL_JOIN);
	ctl_request_clear(&req);
}
END_TEST

START_TEST(test_mute_unmute)
{
	ctl_request req;
	ck_assert_int_eq(parse("{\"type\":\"mute\"}", &req), CTL_MUTE);
	ck_assert_ptr_null(req.id);
	ctl_request_clear(&req);
	ck_assert_int_eq(parse("{\"type\":\"unmute\"}", &req), CTL_UNMUTE);
	ctl_request_clear(&req);
	ck_assert_int_eq(parse("{\"type\":\"mute\",\"id\":3,\"room\":\"x\"}", &req), CTL_MUTE);
	ck_assert_ptr_null(req.id);              /* only pings carry an id */
	ctl_request_clear(&req);
}
END_TEST

START_TEST(test_bad_messages)
{
	assert_bad("", "malformed JSON");
	assert_bad("   ", "malformed JSON");
	assert_bad("not json", "malformed JSON");
	assert_bad("{\"type\":\"ping\"", "malformed JSON");          /* truncated */
	assert_bad("{\"type\":\"pi", "malformed JSON");
	assert_bad("{", "malformed JSON");
	assert_bad("{\"type\":\"ping\"}}", "malformed JSON");         /* trailing garbage */
	assert_bad("{\"type\":\"ping\"} {}", "malformed JSON");
	assert_bad("{'type':'ping'}", "malformed JSON");
	assert_bad("{\"type\":\"ping\",}", "malformed JSON");
	assert_bad("{\"type\":\"ping\",\"type\":\"mute\"}", "malformed JSON");   /* duplicate */
	assert_bad("{\"type\":\"join\",\"room\":\"a\",\"room\":\"b\"}", "malformed JSON");
	assert_bad("{\"type\":\"\xff\"}", "malformed JSON");          /* invalid UTF-8 */
	/* valid JSON, not an object */
	assert_bad("[]", NULL);
	assert_bad("[{\"type\":\"ping\"}]", NULL);
	assert_bad("\"ping\"", NULL);
	assert_bad("42", NULL);
	assert_bad("null", NULL);
	/* the type */
	assert_bad("{}", "missing \"type\"");
	assert_bad("{\"id\":1}", "missing \"type\"");
	assert_bad("{\"type\":null}", "missing \"type\"");
	assert_bad("{\"type\":1}", "missing \"type\"");
	assert_bad("{\"type\":[\"ping\"]}", "missing \"type\"");
	assert_bad("{\"type\":\"pong\"}", "unknown type");
	assert_bad("{\"type\":\"PING\"}", "unknown type");
	assert_bad("{\"type\":\"\"}", "unknown type");
	assert_bad("{\"type\":\"ping \"}", "unknown type");
	assert_bad("{\"Type\":\"ping\"}", "missing \"type\"");
	/* the length given is what is parsed, not up to a NUL */
	ctl_request req;
	const char *text = "{\"type\":\"mute\"}garbage";
	ck_assert_int_eq(ctl_parse(text, 15, &req), CTL_MUTE);
	ctl_request_clear(&req);
	ck_assert_int_eq(ctl_parse(text, 14, &req), CTL_BAD);
	ctl_request_clear(&req);
	ck_assert_int_eq(ctl_parse(text, 0, &req), CTL_BAD);
	ctl_request_clear(&req);
	/* a parse after a failed one starts clean */
	ck_assert_int_eq(parse("{\"type\":\"ping\",\"id\":7}", &req), CTL_PING);
	ck_assert_ptr_null(req.error);
	ctl_request_clear(&req);
}
END_TEST

START_TEST(test_big_and_deep)
{
	/* a large id, and deep nesting: no crash, a verdict either way */
	size_t n = 100000;
	char *text = malloc(n + 64);
	ck_assert_ptr_nonnull(text);
	strcpy(text, "{\"type\":\"ping\",\"id\":\"");
	size_t off = strlen(text);
	memset(text + off, 'x', n);
	strcpy(text + off + n, "\"}");
	ctl_request req;
	ck_assert_int_eq(parse(text, &req), CTL_PING);
	ck_assert_uint_eq(json_string_length(req.id), n);
	ctl_request_clear(&req);
	off = 0;
	off += (size_t)sprintf(text, "{\"type\":\"ping\",\"id\":");
	for (int i = 0; i < 5000; i++)
		text[off++] = '[';
	for (int i = 0; i < 5000; i++)
		text[off++] = ']';
	strcpy(text + off, "}");
	ctl_type t = parse(text, &req);
	ck_assert(t == CTL_PING || t == CTL_BAD);
	ctl_request_clear(&req);
	free(text);
}
END_TEST

/* ---- builders ----------------------------------------------------------- */

/* Parses a builder's output (which it frees) and checks it is a compact
 * object with exactly nfields fields and the given type. */
static json_t *load_built(char *s, size_t nfields, const char *type)
{
	ck_assert_ptr_nonnull(s);
	ck_assert_ptr_null(strchr(s, '\n'));
	json_error_t err;
	json_t *o = json_loads(s, JSON_REJECT_DUPLICATES, &err);
	ck_assert_msg(o != NULL, "invalid JSON %s: %s", s, err.text);
	ck_assert(json_is_object(o));
	ck_assert_uint_eq(json_object_size(o), nfields);
	ck_assert_str_eq(json_string_value(json_object_get(o, "type")), type);
	/* "type" comes first, as in the SPEC examples */
	ck_assert_int_eq(strncmp(s, "{\"type\":", 8), 0);
	free(s);
	return o;
}

static void assert_str_field(json_t *o, const char *key, const char *want)
{
	json_t *v = json_object_get(o, key);
	ck_assert_msg(json_is_string(v), "%s is not a string", key);
	ck_assert_str_eq(json_string_value(v), want);
}

static void assert_int_field(json_t *o, const char *key, json_int_t want)
{
	json_t *v = json_object_get(o, key);
	ck_assert_msg(json_is_integer(v), "%s is not an integer", key);
	ck_assert_int_eq(json_integer_value(v), want);
}

static void assert_member(json_t *m, const char *user, json_int_t ssrc, int muted)
{
	ck_assert(json_is_object(m));
	ck_assert_uint_eq(json_object_size(m), 3);
	assert_str_field(m, "user", user);
	assert_int_field(m, "ssrc", ssrc);
	json_t *v = json_object_get(m, "muted");
	ck_assert(json_is_boolean(v));
	ck_assert_int_eq(json_is_true(v), muted);
}

/* The members list is JSON array content: parsed inside brackets. */
START_TEST(test_member_entry)
{
	ctl_buf b = { 0 };
	ctl_members_add(&b, "U2", 77, 0);
	ctl_members_add(&b, "x", 0xffffffffu, 5);
	char text[256];
	snprintf(text, sizeof text, "[%s]", b.p);
	json_t *a = json_loads(text, 0, NULL);
	ck_assert_ptr_nonnull(a);
	ck_assert_uint_eq(json_array_size(a), 2);
	assert_member(json_array_get(a, 0), "U2", 77, 0);
	assert_member(json_array_get(a, 1), "x", 0xffffffffll, 1);  /* full uint32, not negative */
	json_decref(a);
	ctl_buf_free(&b);
	ck_assert_ptr_null(b.p);
}
END_TEST

/* Strings come out as jansson writes them: every byte that needs escaping,
 * UTF-8 as it is; the same text as json_dumps for the same object. */
START_TEST(test_member_event_escaping_matches_jansson)
{
	char user[64];
	for (int c = 1; c < 0x80; c++) {
		snprintf(user, sizeof user, "a%cb\"\\\xc3\xa9\x1f", c);
		char *mine = ctl_member_event("joined", user, 42);
		json_t *o = json_pack("{s:s, s:s, s:s, s:I}", "type", "member", "event", "joined",
		                      "user", user, "ssrc", (json_int_t)42);
		char *ref = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
		ck_assert_str_eq(mine, ref);
		free(mine);
		free(ref);
		json_decref(o);
	}
}
END_TEST

START_TEST(test_welcome)
{
	ctl_buf members = { 0 }, none = { 0 };
	ctl_members_add(&members, "U2", 77, 0);
	ctl_members_add(&members, "U3", 4000000000u, 1);
	char *s = ctl_welcome("S", "U", "R", 1234, 0, 20, "RESUME", &members);
	ctl_buf_free(&members);
	json_t *o = load_built(s, 9, "welcome");
	assert_str_field(o, "session", "S");
	assert_str_field(o, "user", "U");
	assert_str_field(o, "room", "R");
	assert_int_field(o, "ssrc", 1234);
	assert_int_field(o, "worker", 0);
	assert_int_field(o, "heartbeat_s", 20);
	assert_str_field(o, "resume", "RESUME");
	json_t *ms = json_object_get(o, "members");
	ck_assert(json_is_array(ms));
	ck_assert_uint_eq(json_array_size(ms), 2);
	assert_member(json_array_get(ms, 0), "U2", 77, 0);
	assert_member(json_array_get(ms, 1), "U3", 4000000000ll, 1);
	json_decref(o);

	/* no other members; names that need escaping; large ssrc and worker */
	s = ctl_welcome("id\"1", "us\\er", "caf\xc3\xa9\x7f", 0xffffffffu, 7, 1, "r.e", &none);
	o = load_built(s, 9, "welcome");
	assert_str_field(o, "session", "id\"1");
	assert_str_field(o, "user", "us\\er");
	assert_str_field(o, "room", "caf\xc3\xa9\x7f");
	assert_int_field(o, "ssrc", 0xffffffffll);
	assert_int_field(o, "worker", 7);
	assert_int_field(o, "heartbeat_s", 1);
	assert_str_field(o, "resume", "r.e");
	ck_assert(json_is_array(json_object_get(o, "members")));
	ck_assert_uint_eq(json_array_size(json_object_get(o, "members")), 0);
	json_decref(o);
}
END_TEST

START_TEST(test_joined)
{
	ctl_buf members = { 0 }, none = { 0 }, broken = { .failed = 1 };
	ctl_members_add(&members, "a", 1, 1);
	json_t *o = load_built(ctl_joined("R2", &members), 3, "joined");
	ctl_buf_free(&members);
	assert_str_field(o, "room", "R2");
	json_t *ms = json_object_get(o, "members");
	ck_assert_uint_eq(json_array_size(ms), 1);
	assert_member(json_array_get(ms, 0), "a", 1, 1);
	json_decref(o);
	o = load_built(ctl_joined("empty", &none), 3, "joined");
	ck_assert_uint_eq(json_array_size(json_object_get(o, "members")), 0);
	json_decref(o);
	ck_assert_ptr_null(ctl_joined("r", &broken));  /* a list that ran out of memory */
}
END_TEST

START_TEST(test_member_event)
{
	static const char *const events[] = { "joined", "left", "muted", "unmuted" };
	for (size_t i = 0; i < 4; i++) {
		json_t *o = load_built(ctl_member_event(events[i], "U", 3000000000u), 4, "member");
		assert_str_field(o, "event", events[i]);
		assert_str_field(o, "user", "U");
		assert_int_field(o, "ssrc", 3000000000ll);
		json_decref(o);
	}
}
END_TEST

START_TEST(test_pong)
{
	json_t *id = json_integer(42);
	json_t *o = load_built(ctl_pong(id, 1700000000123), 3, "pong");
	assert_int_field(o, "id", 42);
	assert_int_field(o, "t", 1700000000123);
	json_decref(o);
	ck_assert_int_eq(id->refcount, 1);        /* the caller's reference is kept */
	json_decref(id);

	o = load_built(ctl_pong(NULL, 5), 3, "pong");
	ck_assert_ptr_nonnull(json_object_get(o, "id"));   /* present, and null */
	ck_assert(json_is_null(json_object_get(o, "id")));
	assert_int_field(o, "t", 5);
	json_decref(o);

	id = json_pack("{s:[i,s]}", "k", 1, "v");
	o = load_built(ctl_pong(id, 0), 3, "pong");
	ck_assert(json_equal(json_object_get(o, "id"), id));
	json_decref(o);
	json_decref(id);

	id = json_string("abc");
	o = load_built(ctl_pong(id, -1), 3, "pong");
	assert_str_field(o, "id", "abc");
	assert_int_field(o, "t", -1);
	json_decref(o);
	json_decref(id);
}
END_TEST

START_TEST(test_error)
{
	static const char *const codes[] = { "bad_request", "forbidden", "rate_limited" };
	for (size_t i = 0; i < 3; i++) {
		json_t *o = load_built(ctl_error(codes[i], "what \"went\" wrong\n"), 3, "error");
		assert_str_field(o, "code", codes[i]);
		assert_str_field(o, "msg", "what \"went\" wrong\n");
		json_decref(o);
	}
	/* the parser's error strings go straight into ctl_error */
	ctl_request req;
	ck_assert_int_eq(parse("{\"type\":\"join\"}", &req), CTL_BAD);
	json_t *o = load_built(ctl_error("bad_request", req.error), 3, "error");
	assert_str_field(o, "msg", "join needs a \"room\" string");
	json_decref(o);
	ctl_request_clear(&req);
}
END_TEST

static Suite *control_suite(void)
{
	Suite *s = suite_create("control");
	TCase *p = tcase_create("parse");
	tcase_add_test(p, test_ping);
	tcase_add_test(p, test_join);
	tcase_add_test(p, test_join_bad);
	tcase_add_test(p, test_mute_unmute);
	tcase_add_test(p, test_bad_messages);
	tcase_add_test(p, test_big_and_deep);
	suite_add_tcase(s, p);

	TCase *b = tcase_create("build");
	tcase_add_test(b, test_member_entry);
	tcase_add_test(b, test_member_event_escaping_matches_jansson);
	tcase_add_test(b, test_welcome);
	tcase_add_test(b, test_joined);
	tcase_add_test(b, test_member_event);
	tcase_add_test(b, test_pong);
	tcase_add_test(b, test_error);
	suite_add_tcase(s, b);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(control_suite());
	srunner_run_all(sr, CK_ENV);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
