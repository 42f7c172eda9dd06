// Distributed module
