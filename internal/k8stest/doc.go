// Package k8stest holds the tests k8stest.sh runs against a real
// single-node Kubernetes: pktdrop naming pods, following pods that start
// after it, --pod, kube-proxy's Services, the DaemonSet's metrics and the
// README's `kubectl debug` recipe. They carry the build tag k8s, so
// `go test ./...` does not build them; built with -tags k8s outside
// k8stest.sh they skip, or fail under CI=true.
package k8stest
