/*
 * drainsql.c: hn-drainsql — prints one of the drain's statements
 * (api/drain/sql.c) for bench/upsert.sh, which times the session upsert
 * alone in psql: `hn-drainsql setup` (the connection's temp tables) or
 * `hn-drainsql sessions` (the upsert).
 */
#include "api/drain/sql.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "setup") == 0) {
        printf("%s;\n", hn_drain_sql_setup);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "sessions") == 0) {
        printf("%s;\n", hn_drain_sql_sessions);
        return 0;
    }
    fprintf(stderr, "usage: hn-drainsql setup|sessions\n");
    return 2;
}
