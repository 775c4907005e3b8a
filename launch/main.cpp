// The lmt executable: the CLI of launch/entry.cpp.
#include "commands.h"

int main(int argc, char** argv) { return lmt::launch::run_main(argc, argv); }
