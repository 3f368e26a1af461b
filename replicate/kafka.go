package replicate

// KafkaFigures are the measurements behind a Kafka Status.
type KafkaFigures struct{}
