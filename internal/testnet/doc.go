// Package testnet builds throwaway network topologies from real network
// namespaces and veth pairs, and reproduces pktdrop's field cases in them.
//
// It is test-support code: every constructor takes a testing.TB, gates on
// root and the host tools it needs (skip locally, fail under CI=true, see
// internal/privtest), and registers cleanup so namespaces never outlive the
// test. Everything happens inside namespaces named "<prefix>-<name>" with a
// random per-Net prefix, so tests may run in parallel and the host (init)
// namespace's links, rules and sysctls are never touched.
//
// Addresses are private and only ever configured inside those namespaces:
// 10.231.0.0/16 for links, 10.232.0.0/16 for "pod" networks and
// fd00:231::/48 for IPv6. No scenario sends traffic anywhere else.
package testnet
