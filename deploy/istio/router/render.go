package main

import (
	"bytes"
	"fmt"
	"text/template"
)

// Route is one region's destination in the VirtualService: the Istio
// subset (a DestinationRule subset per region, e.g. by a locality label)
// and its weight in percent.
type Route struct {
	Region string
	Subset string
	Weight int
}

// Spec names the VirtualService.
type Spec struct {
	Name, Namespace, Host string
	// Reason is written as an annotation: why the weights are what they are.
	Reason string
}

var vsTemplate = template.Must(template.New("vs").Parse(`# Rendered by regionsync's Istio router example from gate decisions.
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: {{.Spec.Name}}
  namespace: {{.Spec.Namespace}}
  annotations:
    regionsync.io/reason: {{printf "%q" .Spec.Reason}}
spec:
  hosts:
    - {{.Spec.Host}}
  http:
    - route:
{{- range .Routes}}
        - destination:
            host: {{$.Spec.Host}}
            subset: {{.Subset}}
          weight: {{.Weight}}
{{- end}}
`))

// Render writes the VirtualService with routes; weights must sum to 100.
func Render(s Spec, routes []Route) ([]byte, error) {
	sum := 0
	for _, r := range routes {
		if r.Weight < 0 {
			return nil, fmt.Errorf("route to %s: negative weight %d", r.Region, r.Weight)
		}
		sum += r.Weight
	}
	if sum != 100 {
		return nil, fmt.Errorf("route weights sum to %d, Istio needs 100", sum)
	}
	var b bytes.Buffer
	err := vsTemplate.Execute(&b, struct {
		Spec   Spec
		Routes []Route
	}{s, routes})
	return b.Bytes(), err
}

// Weights sends all traffic to active and none to the other regions.
func Weights(regions []string, active string) []Route {
	out := make([]Route, 0, len(regions))
	for _, r := range regions {
		w := 0
		if r == active {
			w = 100
		}
		out = append(out, Route{Region: r, Subset: r, Weight: w})
	}
	return out
}
