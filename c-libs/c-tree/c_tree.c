/* The seed's tree printer written directly in C against libexpat: one line
 * per start tag, indented three spaces per level. The benchmarks' anchor for
 * expat_tree, built with the same clang and flags against the same expat. */
#include <expat.h>
#include <stdio.h>
#include <stdlib.h>

static void XMLCALL start(void *ud, const XML_Char *name, const XML_Char **atts) {
    (void)atts;
    int *depth = ud;
    for (int i = 0; i < *depth * 3; i++) putchar(' ');
    fputs(name, stdout);
    putchar('\n');
    ++*depth;
}

static void XMLCALL end(void *ud, const XML_Char *name) {
    (void)name;
    --*(int *)ud;
}

int main(int argc, char **argv) {
    FILE *in = argc > 1 ? fopen(argv[1], "rb") : stdin;
    if (!in) {
        perror(argv[1]);
        return 2;
    }
    XML_Parser p = XML_ParserCreate(NULL);
    if (!p) return 2;
    int depth = 0;
    XML_SetUserData(p, &depth);
    XML_SetElementHandler(p, start, end);
    static char buf[1 << 16];
    for (;;) {
        size_t n = fread(buf, 1, sizeof buf, in);
        int last = n < sizeof buf;
        if (XML_Parse(p, buf, (int)n, last) == XML_STATUS_ERROR) {
            fprintf(stderr, "%s at line %lu, column %lu\n", XML_ErrorString(XML_GetErrorCode(p)),
                    XML_GetCurrentLineNumber(p), XML_GetCurrentColumnNumber(p));
            return 1;
        }
        if (last) break;
    }
    XML_ParserFree(p);
    return 0;
}
