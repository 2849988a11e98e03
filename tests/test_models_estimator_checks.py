"""scikit-learn's estimator checks on SoftmaxRegression, one instance per solver."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from softmaxreg.models import SoftmaxRegression

SGD = SoftmaxRegression(solver="sgd", max_iter=20, random_state=0)


def expected_failures(estimator):
    if estimator is SGD:
        # As for scikit-learn's SGDClassifier: repeated rows and integer weights
        # fall into different minibatches, so the runs agree in expectation only.
        reason = "minibatch SGD: weights equal repeated rows in expectation, not run by run"
        return {"check_sample_weight_equivalence_on_dense_data": reason,
                "check_sample_weight_equivalence_on_sparse_data": reason}
    return {}


@parametrize_with_checks(
    [
        SoftmaxRegression(),
        SoftmaxRegression(solver="newton-cg"),
        SoftmaxRegression(penalty="l1", C=10.0, max_iter=300),
        SGD,
    ],
    expected_failed_checks=expected_failures,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
