"""The seed script: the Keras textbook's batch-norm + gradient-clipping MLP on MNIST.

It is ordinary Keras code; only the import line changed (`import tensorflow as tf` before).
Run it with `make demo`.
"""

import time

import kerox as tf

(x_train, y_train), (x_test, y_test) = tf.keras.datasets.mnist.load_data()
x_train = x_train.reshape(-1, 784) / 255.0
x_test = x_test.reshape(-1, 784) / 255.0
y_train = tf.keras.utils.to_categorical(y_train, 10)
y_test = tf.keras.utils.to_categorical(y_test, 10)

model = tf.keras.Sequential()
model.add(tf.keras.layers.Input(shape=(784,)))
model.add(tf.keras.layers.Dense(256, activation="relu"))
model.add(tf.keras.layers.Dense(64, activation="relu"))
model.add(tf.keras.layers.BatchNormalization())
model.add(tf.keras.layers.Dense(32, activation="relu"))
model.add(tf.keras.layers.Dense(10, activation="softmax"))
model.compile(
    optimizer=tf.keras.optimizers.SGD(0.01, clipnorm=1.0),
    loss="categorical_crossentropy",
    metrics=["accuracy"],
)
model.summary()

start = time.perf_counter()
model.fit(x_train, y_train, epochs=5, validation_split=0.1)
elapsed = time.perf_counter() - start
loss, accuracy = model.evaluate(x_test, y_test)
print(f"\nTest accuracy: {accuracy:.4f}  (test loss {loss:.4f})")
print(
    f"Training took {elapsed:.1f} s for 5 epochs on {tf.config.get_num_threads()} thread(s), "
    f"dispatch level {tf.config.dispatch_level()}."
)
