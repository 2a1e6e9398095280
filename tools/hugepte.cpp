// hugepte - command-line tool (decode lands with the formats).
#include <cstdio>
int main() { std::puts("hugepte"); return 0; }
