"""One model class per model type; `common` holds what they share."""
