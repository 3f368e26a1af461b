// Package internal holds plumbing shared by several regionsync folders (config
// loading, HTTP server, logging); domain logic never lives here.
package internal
