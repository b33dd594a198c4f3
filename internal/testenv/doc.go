// Package testenv gives integration tests real parts to run against: one
// local control plane per test package (started in TestMain and shared by
// its tests), fresh namespaces, weir's controllers, a Git server on
// loopback that speaks smart HTTP (with basic auth) and SSH (with a host
// key), serving repositories the tests write with go-git, and an OCI
// registry on loopback (optionally with basic auth) that tests push Flux
// artifacts and Helm charts to (NewRegistry).
//
//	var env *testenv.Env
//
//	func TestMain(m *testing.M) { testenv.Main(m, &env) }
//
//	func TestSomething(t *testing.T) {
//		ns := env.Namespace(t)
//		...
//	}
package testenv
