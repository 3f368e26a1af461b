// Package schemas holds the JSON Schemas of every event and record regionsync
// emits or reads; they are the contract with routers and Go types round-trip them.
package schemas
