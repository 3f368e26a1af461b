package config

import "gopkg.in/yaml.v3"

// String renders the config as YAML with every secret shown as [REDACTED].
func (c *Config) String() string {
	b, err := yaml.Marshal(c)
	if err != nil {
		return "config: " + err.Error()
	}
	return string(b)
}
